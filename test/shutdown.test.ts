import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { cliProcesses, makeDirs, waitFor } from './helper.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts the real server process, as `npm start` does (from source, through tsx). */
async function startServer(env: Record<string, string>) {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1', MODEL_BACKEND: 'offline', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const up = await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 30_000, 200);
  if (!up) throw new Error(`server did not start: ${log}`);
  return { child, base, log: () => log };
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

describe('graceful stop', () => {
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  });

  it('SIGTERM mid-turn: the server exits and leaves no CLI process behind', async () => {
    const dirs = makeDirs();
    const srv = await startServer({ SHUTDOWN_GRACE_MS: '1000', DATA_DIR: dirs.dataDir, WORKSPACE_ROOT: dirs.workspace, CLAUDE_CONFIG_DIR: dirs.configDir });
    children.push(srv.child);
    const created = await (await fetch(`${srv.base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    const turn = fetch(`${srv.base}/v1/sessions/${created.session_id}/turns`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: '[[slow:30000]] take your time' }),
    }).then((r) => r.json());
    const running = await waitFor(async () => (await (await fetch(`${srv.base}/v1/sessions/${created.session_id}`)).json()).running_turn_id, 20_000);
    expect(running).toBeTruthy();
    expect(cliProcesses(dirs.configDir).length).toBeGreaterThan(0);

    const t0 = Date.now();
    srv.child.kill('SIGTERM');
    const code = await exited(srv.child);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The request in flight got its answer: the turn was stopped, not lost or left running.
    expect(await turn).toMatchObject({ status: 'interrupted', error: { code: 'SERVER_SHUTDOWN' } });
    const left = await waitFor(() => cliProcesses(dirs.configDir).length === 0, 5_000);
    expect(left).toBe(true);
  });
});
