/**
 * The server under test, run as its own process as `npm start` runs it (the built `dist/`), pointed
 * at a model endpoint the bench shares with its raw-SDK baselines.
 */
import fs from 'node:fs';
import { START_NODE_FLAGS } from '../scripts/start-flags.js';
import net from 'node:net';
import http from 'node:http';
import path from 'node:path';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { decideIsolation, isolationOptions } from '../src/claude/sandbox.js';

export interface ServerProcess {
  base: string;
  child: ChildProcess;
  configDir: string;
  stop(): Promise<void>;
}

/** SIGTERM, and wait for the exit. */
async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });

export { START_NODE_FLAGS } from '../scripts/start-flags.js';

export async function startServerProcess(root: string, modelUrl: string, env: Record<string, string> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const configDir = env.CLAUDE_CONFIG_DIR ?? path.join(root, 'claude');
  fs.mkdirSync(root, { recursive: true });
  // BENCH_SERVER_NODE_FLAGS: more Node flags for the server (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const extra = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...START_NODE_FLAGS, ...extra, 'dist/server.js'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: path.join(root, 'data'),
      WORKSPACE_ROOT: path.join(root, 'workspace'),
      CLAUDE_CONFIG_DIR: configDir,
      // The bench's own offline model, as a gateway: the server's CLIs and the raw baselines share it.
      MODEL_BACKEND: 'anthropic',
      ANTHROPIC_BASE_URL: modelUrl,
      ANTHROPIC_API_KEY: 'offline-model',
      LOG_LEVEL: 'warn',
      PREWARM_SPARES: '0',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if ((await fetch(`${base}/health`).catch(() => null))?.ok) break;
    if (child.exitCode !== null) throw new Error('server process exited');
    await new Promise((r) => setTimeout(r, 150));
  }
  return {
    base,
    child,
    configDir,
    stop: () => stopChild(child),
  };
}

/** bench/bare-server.ts as its own process: a reference for the breakdown, not the product. */
export async function startBareServer(
  root: string,
  configDir: string,
  modelUrl: string,
  env: Record<string, string> = {},
): Promise<{ base: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const child = spawn(process.execPath, [...START_NODE_FLAGS, '--import', 'tsx', 'bench/bare-server.ts'], {
    env: { ...process.env, PORT: String(port), BARE_ROOT: root, CLAUDE_CONFIG_DIR: configDir, ANTHROPIC_BASE_URL: modelUrl, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the bare server exited (${code})`)));
  });
  return {
    base: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () => stopChild(child),
  };
}

/** bench/harness.ts as its own process: the raw SDK with the server's bounds, asked over IPC. */
export async function startHarness(
  root: string,
  configDir: string,
  modelUrl: string,
  env: Record<string, string> = {},
): Promise<{ pid: number; ask(m: Record<string, unknown>): Promise<any>; stop(): Promise<void> }> {
  fs.mkdirSync(path.join(root, 'tmp'), { recursive: true });
  const child = fork('bench/harness.ts', [], {
    execArgv: [...START_NODE_FLAGS, '--import', 'tsx'],
    env: { ...process.env, HARNESS_ROOT: root, CLAUDE_CONFIG_DIR: configDir, ANTHROPIC_BASE_URL: modelUrl, ...env },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const waiting = new Map<number, { resolve(v: any): void; reject(e: Error): void }>();
  let n = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the harness exited (${code})`)));
  });
  child.on('message', (m: { n: number; ok: boolean; error?: string }) => {
    const w = waiting.get(m.n);
    waiting.delete(m.n);
    if (m.ok) w?.resolve(m);
    else w?.reject(new Error(m.error));
  });
  const ask = (m: Record<string, unknown>) =>
    new Promise<any>((resolve, reject) => {
      const k = n++;
      waiting.set(k, { resolve, reject });
      child.send({ ...m, n: k });
    });
  return {
    pid: child.pid!,
    ask,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      await Promise.race([ask({ op: 'close' }).catch(() => {}), new Promise((r) => setTimeout(r, 10_000))]);
      child.kill('SIGTERM');
      await exited;
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** A JSON request over a kept-alive connection (node:http: less client overhead than fetch). */
export function api(base: string, method: string, url: string, body?: unknown): Promise<any> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      base + url,
      { method, agent, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: any;
          try {
            json = JSON.parse(text);
          } catch {
            json = text;
          }
          if ((res.statusCode ?? 500) >= 300) reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 300)}`));
          else resolve(json);
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A gauge's value from /metrics. */
export async function gauge(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
}

const PG_ADMIN = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A fresh PostgreSQL database for one bench section; returns its URL and a drop function. */
export async function freshDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomUUID().slice(0, 8)}`;
  const admin = async (q: string) => {
    const c = new pg.Client({ connectionString: PG_ADMIN });
    await c.connect();
    try {
      await c.query(q);
    } finally {
      await c.end();
    }
  };
  await admin(`create database ${name}`);
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

/**
 * The isolation options the server gives its CLIs (single-user default: the sandbox where it runs,
 * the file-tool limits always), for the raw baselines and the bare wrapper: the same SDK options on
 * every side of a ratio. `BENCH_SANDBOX=off` measures every side without the sandbox.
 */
export function benchIsolation(hidden: string[], sandbox: 'auto' | 'off' = process.env.BENCH_SANDBOX === 'off' ? 'off' : 'auto') {
  return isolationOptions(decideIsolation({ mode: sandbox, singleUser: true, domains: [], network: 'none', readPaths: undefined, hiddenPaths: hidden }).policy);
}
