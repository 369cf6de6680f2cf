import { execSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createProcessRegistry, isAlive, reapOrphans, reapStrays } from '../../src/claude/processes.js';
import { cliProcesses, dbEnv, exited, folderEnv, freePort, makeDirs, startServer, waitFor } from '../helper.js';

/** "pid ppid=N pgrp=N: command line" of a live process (for a failure's message). */
function describeProcess(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return `${pid} ${f[0]} ppid=${f[1]} pgrp=${f[2]}: ${cmd.slice(0, 300)}`;
  } catch {
    return `${pid}: gone`;
  }
}

describe('graceful stop', () => {
  const children: ChildProcess[] = [];
  const leftBehind: number[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    for (const pid of leftBehind) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  });

  it('SIGTERM to `npm start` reaches the server: it stops, and no CLI process is left', async () => {
    // What a process manager, `timeout` or `docker stop` on an `npm start` image does. npm passes the
    // signal to its script's shell only; the script must hand the shell over to the server.
    if (!fs.existsSync('dist/server.js')) throw new Error('dist/ is missing: `npm test` builds it first (pretest)');
    const dirs = makeDirs();
    const port = await freePort();
    // --ignore-scripts: the start script itself, without its prestart build (pretest built dist/).
    const npm = spawn('npm', ['start', '--silent', '--ignore-scripts'], {
      env: {
        ...process.env,
        ...(await dbEnv(dirs)),
        PORT: String(port),
        HOST: '127.0.0.1',
        MODEL_BACKEND: 'offline',
        LOG_LEVEL: 'warn',
        DATA_DIR: dirs.dataDir,
        WORKSPACE_ROOT: dirs.workspace,
        CLAUDE_CONFIG_DIR: dirs.configDir,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(npm);
    let log = '';
    npm.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const base = `http://127.0.0.1:${port}`;
    const up = await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 30_000, 200);
    if (!up) throw new Error(`npm start did not serve: ${log}`);
    const s = await (
      await fetch(`${base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'hello' }) })
    ).json();
    expect(s.turn.status).toBe('succeeded');
    // npm, the server and its CLI processes (warm and spare) all carry this CLAUDE_CONFIG_DIR.
    const running = cliProcesses(dirs.configDir, { tree: true });
    expect(running.length).toBeGreaterThanOrEqual(3);

    npm.kill('SIGTERM');
    await exited(npm);
    const gone = await waitFor(() => cliProcesses(dirs.configDir, { tree: true }).length === 0, 15_000);
    const left = cliProcesses(dirs.configDir, { tree: true });
    leftBehind.push(...left);
    // What is left, described, so that a failure says which process outlived the server and whose child it is.
    expect(left.map(describeProcess), log).toEqual([]);
    expect(gone).toBe(true);
    expect(
      await fetch(`${base}/health`).then(
        () => 'served',
        () => 'refused',
      ),
    ).toBe('refused');
  });

  it('SIGTERM mid-turn: the server exits and leaves no CLI process behind', async () => {
    const dirs = makeDirs();
    const srv = await startServer({
      ...(await folderEnv(dirs)),
      SHUTDOWN_GRACE_MS: '1000',
    });
    children.push(srv.child);
    const created = await (await fetch(`${srv.base}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).json();
    const turn = fetch(`${srv.base}/v1/sessions/${created.session_id}/turns`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: '[[slow:30000]] take your time' }),
    }).then((r) => r.json());
    const running = await waitFor(async () => (await (await fetch(`${srv.base}/v1/sessions/${created.session_id}`)).json()).running_turn_id, 20_000);
    expect(running).toBeTruthy();
    expect(cliProcesses(dirs.configDir, { tree: true }).length).toBeGreaterThan(0);

    const t0 = Date.now();
    srv.child.kill('SIGTERM');
    // During the grace period a new request gets the contract's 503: the JSON error, with Retry-After.
    const refused = await waitFor(async () => {
      const r = await fetch(`${srv.base}/v1/sessions/${created.session_id}/turns`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ prompt: 'hi' }),
      });
      return r.status === 503 ? r : null;
    }, 900);
    if (!refused) throw new Error('no 503 during the grace period');
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(refused.headers.get('x-request-id')).toBeTruthy();
    const body = await refused.json();
    expect(body.error).toMatchObject({ code: 'SHUTTING_DOWN', request_id: refused.headers.get('x-request-id') });
    const health = await fetch(`${srv.base}/health`);
    expect(health.status).toBe(503);
    expect((await health.json()).status).toBe('shutting_down');
    const code = await exited(srv.child);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // The request in flight got its answer: the turn was stopped, not lost or left running.
    expect(await turn).toMatchObject({ status: 'interrupted', error: { code: 'SERVER_SHUTDOWN' } });
    const left = await waitFor(() => cliProcesses(dirs.configDir, { tree: true }).length === 0, 5_000);
    expect(left).toBe(true);
  });

  it('SIGKILL mid-turn, then a restart: the turn is failed, no orphan CLI is left, the session goes on', async () => {
    const dirs = makeDirs();
    const env = await folderEnv(dirs);
    const first = await startServer(env);
    children.push(first.child);
    const post = (base: string, url: string, body: unknown) =>
      fetch(`${base}${url}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
    const s = await post(first.base, '/v1/sessions', { prompt: 'Remember: my favorite color is blue' });
    expect(s.turn.status).toBe('succeeded');
    const turn = await post(first.base, `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:60000]] a long job' });
    await waitFor(async () => (await (await fetch(`${first.base}/v1/sessions/${s.session_id}`)).json()).running_turn_id === turn.turn_id, 20_000);
    const orphans = cliProcesses(dirs.configDir, { tree: true });
    expect(orphans.length).toBeGreaterThan(0);

    const clis = cliProcesses(dirs.configDir);
    expect(clis.length).toBeGreaterThan(0);
    first.child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited(first.child);
    // The kernel ends each CLI with its server (setpriv --pdeathsig), before any restart: within 2 s.
    // (Without it a CLI outlives its killed parent, measured: it went on with its turn and its transcript.)
    expect(await waitFor(() => cliProcesses(dirs.configDir).length === 0, 2_000, 20)).toBe(true);
    expect(Date.now() - killedAt).toBeLessThan(2_000);

    const second = await startServer(env);
    children.push(second.child);
    expect(cliProcesses(dirs.configDir, { tree: true }).filter((p) => orphans.includes(p))).toEqual([]);
    const after = await (await fetch(`${second.base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).json();
    expect(after.status).toBe('failed');
    expect(after.error.code).toBe('SERVER_RESTARTED');
    // Its event stream ends, with the failure, instead of waiting forever.
    const stream = await fetch(`${second.base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events`, { headers: { accept: 'text/event-stream' } });
    const text = await stream.text();
    expect(text).toMatch(/event: error\ndata: \{"code":"SERVER_RESTARTED"/);
    expect(text.trimEnd()).toMatch(/event: done\ndata: .*"status":"failed"/);
    const next = await post(second.base, `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(next.status).toBe('succeeded');
    expect(next.result).toMatch(/blue/);
    second.child.kill('SIGTERM');
    expect(await exited(second.child)).toBe(0);
    expect(await waitFor(() => cliProcesses(dirs.configDir, { tree: true }).length === 0, 5_000)).toBe(true);
  });
});

describe('the second line: pid files', () => {
  it('a process recorded in the pid folder with this config dir in its environment is ended at the next start; one of another config dir is not', async () => {
    const dirs = makeDirs();
    const pidDir = path.join(dirs.dataDir, 'pids');
    fs.mkdirSync(pidDir, { recursive: true });
    // Stand-ins for CLIs that survived (where setpriv is missing): real processes, in groups of their own.
    const start = (configDir: string) => {
      const c = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { PATH: process.env.PATH, CLAUDE_CONFIG_DIR: configDir } });
      fs.writeFileSync(path.join(pidDir, String(c.pid)), `${Date.now()}\n`);
      return c;
    };
    const ours = start(dirs.configDir);
    const oursEnded = new Promise<NodeJS.Signals | null>((r) => ours.once('exit', (_code, signal) => r(signal)));
    const theirs = start(`${dirs.configDir}-other`);
    try {
      expect(await reapOrphans(pidDir, dirs.configDir)).toBe(1);
      expect(await oursEnded).toBe('SIGTERM');
      expect(theirs.exitCode === null && theirs.signalCode === null).toBe(true);
      expect(fs.readdirSync(pidDir)).toEqual([]);
    } finally {
      theirs.kill('SIGKILL');
    }
  });

  it("a CLI already dead (killed with its server) whose group lives on: the group's processes are ended at the next start", async () => {
    const dirs = makeDirs();
    const pidDir = path.join(dirs.dataDir, 'pids');
    fs.mkdirSync(pidDir, { recursive: true });
    // A group leader (the CLI's stand-in) with a subshell in its group, which runs a tool: the tool's
    // parent lives on after the leader dies, so only the group kill (not the ppid-1 sweep) can end it.
    const leader = spawn('sh', ['-c', '(sleep 60 & echo $!; wait) & wait'], {
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { PATH: process.env.PATH, CLAUDE_CONFIG_DIR: dirs.configDir },
    });
    const tool = Number(await new Promise<string>((r) => leader.stdout.once('data', (d: Buffer) => r(d.toString().trim()))));
    fs.writeFileSync(path.join(pidDir, String(leader.pid)), `${Date.now()}\n`);
    const ended = new Promise((r) => leader.once('exit', r));
    leader.kill('SIGKILL');
    await ended;
    const alive = isAlive;
    expect(alive(tool)).toBe(true);
    try {
      await reapOrphans(pidDir, dirs.configDir);
      expect(await waitFor(() => !alive(tool), 2_000)).toBe(true);
    } finally {
      if (alive(tool)) process.kill(tool, 'SIGKILL');
    }
  });
});

describe('the registry at the end', () => {
  it('a process that exits with CLIs still running (a forced exit) takes their whole groups with it, not the CLI alone', async () => {
    // The kernel's death signal reaches the CLI only; a helper it started (the sandbox's socat) would be
    // left to init. A CLI stand-in: a shell whose child sleeps in its group.
    const dirs = makeDirs();
    const script = `
      import { createProcessRegistry } from ${JSON.stringify(path.resolve('dist/claude/processes.js'))};
      const r = createProcessRegistry(${JSON.stringify(path.join(dirs.dataDir, 'pids'))}, undefined, undefined, ${JSON.stringify(dirs.configDir)});
      const c = r.spawn({ command: 'sh', args: ['-c', 'sleep 60 & echo $!; wait'], cwd: ${JSON.stringify(dirs.workspace)}, env: { PATH: process.env.PATH, CLAUDE_CONFIG_DIR: ${JSON.stringify(dirs.configDir)} } });
      c.stdout.once('data', (d) => { process.stdout.write(c.pid + ' ' + d.toString().trim() + '\\n'); process.exit(3); });
    `;
    fs.mkdirSync(dirs.workspace, { recursive: true });
    const host = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((r) => host.stdout.once('data', (d: Buffer) => r(d.toString().trim())));
    const [cli, helper] = line.split(' ').map(Number) as [number, number];
    expect(await exited(host)).toBe(3);
    try {
      expect(await waitFor(() => !isAlive(cli) && !isAlive(helper), 2_000)).toBe(true);
    } finally {
      for (const pid of [cli, helper]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  it('once closing has begun, no CLI starts', async () => {
    const dirs = makeDirs();
    fs.mkdirSync(dirs.workspace, { recursive: true });
    const r = createProcessRegistry(path.join(dirs.dataDir, 'pids'), undefined, undefined, dirs.configDir);
    const opts = {
      command: 'sleep',
      args: ['60'],
      cwd: dirs.workspace,
      env: { PATH: process.env.PATH, CLAUDE_CONFIG_DIR: dirs.configDir },
      signal: new AbortController().signal,
    };
    r.spawn(opts);
    const [first] = r.pids;
    expect(first).toBeGreaterThan(1);
    const closing = r.killAll(1_000);
    expect(() => r.spawn(opts)).toThrow(/shutting down/);
    await closing;
    expect(isAlive(first!)).toBe(false);
    expect(cliProcesses(dirs.configDir, { tree: true })).toEqual([]);
  });
});

describe('what CLIs leave behind', () => {
  const ppid = (pid: number) => Number(/^PPid:\s+(\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  const gone = (pid: number) => !isAlive(pid);

  it("a process adopted by init with this server's config dir in its environment is ended (as the sandbox's socat was seen left running); others are not", async () => {
    const ours = makeDirs();
    const theirs = makeDirs();
    // Each: a shell that starts a sleep in the background and exits, so that init adopts the sleep.
    for (const d of [ours, theirs]) execSync(`sh -c 'sleep 60 >/dev/null 2>&1 &'`, { env: { ...process.env, CLAUDE_CONFIG_DIR: d.configDir } });
    const stray = await waitFor(() => cliProcesses(ours.configDir, { tree: true }).find((p) => ppid(p) === 1), 5_000);
    const other = await waitFor(() => cliProcesses(theirs.configDir, { tree: true }).find((p) => ppid(p) === 1), 5_000);
    expect(stray).toBeTruthy();
    expect(other).toBeTruthy();
    try {
      expect(reapStrays(ours.configDir)).toBe(1);
      expect(await waitFor(() => gone(stray!), 5_000)).toBe(true);
      expect(gone(other!)).toBe(false);
    } finally {
      process.kill(other!, 'SIGKILL');
    }
  });
});
