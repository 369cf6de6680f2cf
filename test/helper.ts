/**
 * Test helpers: build the real app (real SDK, real CLI, offline model) on fresh temporary
 * folders, and call it through `inject`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import net from 'node:net';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { cliBinaryPath } from '../src/claude/paths.js';
import { loadConfig, type Config } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { startOfflineModel, type OfflineModel } from '../src/offline-model/server.js';
import { START_NODE_FLAGS } from '../scripts/start-flags.js';
import type { App } from '../src/types.js';
import { afterAll, beforeAll } from 'vitest';

export interface TestDirs {
  root: string;
  dataDir: string;
  workspace: string;
  configDir: string;
}

/** Folders made by this test file; test/setup.ts removes them after the file's tests. */
export const madeDirs: string[] = [];
/** PostgreSQL databases made by this test file; test/setup.ts drops them. */
export const madeDatabases: string[] = [];

/** The dialect this run tests (the suite runs once per dialect: see vitest.config.ts). */
export const DIALECT = (process.env.TEST_DIALECT ?? 'sqlite') as 'sqlite' | 'postgres';
const PG_ADMIN = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A database for one set of test folders: its DATABASE_URL under PostgreSQL, nothing under SQLite. */
export async function dbEnv(dirs: TestDirs): Promise<Record<string, string>> {
  if (DIALECT !== 'postgres') return {};
  const name = `css_${path
    .basename(dirs.root)
    .replace(/[^a-zA-Z0-9]/g, '_')
    .toLowerCase()}`;
  if (!madeDatabases.includes(name)) {
    const c = new pg.Client({ connectionString: PG_ADMIN });
    await c.connect();
    try {
      await c.query(`create database ${name}`);
    } catch (err) {
      if ((err as { code?: string }).code !== '42P04') throw err; // exists already
    } finally {
      await c.end();
    }
    madeDatabases.push(name);
  }
  const u = new URL(PG_ADMIN);
  u.pathname = `/${name}`;
  return { DATABASE_URL: u.toString() };
}

/** Drops the databases this file made. */
export async function dropDatabases(): Promise<void> {
  if (madeDatabases.length === 0) return;
  const c = new pg.Client({ connectionString: PG_ADMIN });
  await c.connect();
  try {
    for (const name of madeDatabases.splice(0)) await c.query(`drop database if exists ${name} with (force)`);
  } finally {
    await c.end();
  }
}

/** A fresh set of folders under the system temp dir. */
export function makeDirs(prefix = 'css-test-'): TestDirs {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), prefix)));
  madeDirs.push(root);
  return { root, dataDir: path.join(root, 'data'), workspace: path.join(root, 'workspace'), configDir: path.join(root, 'claude') };
}

export function testConfig(dirs: TestDirs, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATA_DIR: dirs.dataDir,
    WORKSPACE_ROOT: dirs.workspace,
    CLAUDE_CONFIG_DIR: dirs.configDir,
    MODEL_BACKEND: 'offline',
    // TEST_LOG_LEVEL=warn (or info) shows the apps' logs when a test needs looking into.
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PREWARM_SPARES: '0',
    MAX_WARM_SESSIONS: '4',
    // Tests poll; the per-key rate limit has its own test.
    RATE_LIMIT_PER_MINUTE: '1000000',
    ...env,
  });
}

let shared: OfflineModel | undefined;
/** One offline model per test file. */
export async function offlineModel(): Promise<OfflineModel> {
  shared ??= await startOfflineModel();
  return shared;
}

export interface TestApp {
  app: App;
  config: Config;
  dirs: TestDirs;
  close(): Promise<void>;
}

/** Builds the app on `dirs` (fresh ones unless given). */
export async function startApp(opts: { dirs?: TestDirs; env?: Record<string, string> } = {}): Promise<TestApp> {
  const dirs = opts.dirs ?? makeDirs();
  const config = testConfig(dirs, { ...(await dbEnv(dirs)), ...opts.env });
  const app = await buildApp(config, { offlineModel: await offlineModel() });
  await app.ready();
  return { app, config, dirs, close: () => app.close() };
}

/** A suite's app: started before its tests (listening on loopback with `listen`), closed after them. */
export interface SuiteApp extends TestApp {
  /** The base URL when started with `listen`. */
  readonly base: string;
}

/** Starts the app in the suite's beforeAll and closes it in its afterAll. */
export function useApp(opts: { dirs?: TestDirs; env?: Record<string, string>; listen?: boolean } = {}): SuiteApp {
  let current: TestApp | undefined;
  let base = '';
  beforeAll(async () => {
    current = await startApp(opts);
    if (opts.listen) base = await listen(current.app);
  });
  afterAll(async () => current?.close());
  const started = () => {
    if (!current) throw new Error('useApp: the app is started in beforeAll');
    return current;
  };
  return {
    get app() {
      return started().app;
    },
    get config() {
      return started().config;
    },
    get dirs() {
      return started().dirs;
    },
    get base() {
      return base;
    },
    close: () => started().close(),
  };
}

/** JSON request through inject; returns status and parsed body. */
export async function call(app: App, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method,
    url,
    ...(body !== undefined
      ? { payload: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } }
      : { headers }),
  });
  let json: any;
  try {
    json = res.json();
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, body: json, headers: res.headers, raw: res.body };
}

/** The user prompts recorded in a transcript file, in order (system reminders left out). */
export function transcriptPrompts(file: string): string[] {
  const out: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const e = JSON.parse(line);
    if (e.type !== 'user' || e.isMeta) continue;
    const c = e.message?.content;
    const texts = typeof c === 'string' ? [c] : Array.isArray(c) ? c.filter((b: any) => b.type === 'text').map((b: any) => b.text) : [];
    const t = texts
      .filter((x: string) => !x.trimStart().startsWith('<system-reminder>'))
      .join('\n')
      .trim();
    if (t) out.push(t);
  }
  return out;
}

let cliExe: string | undefined;

/**
 * Pids of live CLI processes whose environment has CLAUDE_CONFIG_DIR=`configDir`. With `tree`,
 * every process that inherited that environment: the CLIs, their tools' children and the
 * sandbox's helpers (socat, bwrap).
 */
export function cliProcesses(configDir: string, opts: { tree?: boolean } = {}): number[] {
  cliExe ??= fs.realpathSync(cliBinaryPath());
  const needle = Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`);
  const pids: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${name}/environ`);
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      if (/\) Z /.test(stat)) continue; // a zombie has already ended
      if (!env.includes(needle)) continue;
      if (opts.tree || fs.readlinkSync(`/proc/${name}/exe`) === cliExe) pids.push(Number(name));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}

/** Waits until `check` returns a truthy value or `ms` pass; returns the last value. */
export async function waitFor<T>(check: () => T | Promise<T>, ms = 10_000, every = 50): Promise<T> {
  const end = Date.now() + ms;
  let v = await check();
  while (!v && Date.now() < end) {
    await new Promise((r) => setTimeout(r, every));
    v = await check();
  }
  return v;
}

/** The statuses a turn ends in. */
export const ENDED = ['succeeded', 'failed', 'interrupted', 'cancelled'];

/**
 * Waits until a turn's status is one of `statuses` (by default: it has ended) and returns the turn;
 * throws when it is not within `ms`, saying where it stayed.
 */
export async function waitForTurn(
  app: App,
  sessionId: string,
  turnId: string,
  statuses: string | string[] = ENDED,
  ms = 20_000,
  headers: Record<string, string> = {},
): Promise<any> {
  const want = typeof statuses === 'string' ? [statuses] : statuses;
  let turn: any = null;
  const end = Date.now() + ms;
  for (;;) {
    turn = (await call(app, 'GET', `/v1/sessions/${sessionId}/turns/${turnId}`, undefined, headers)).body;
    if (want.includes(turn?.status)) return turn;
    if (Date.now() > end) throw new Error(`turn ${turnId} is ${turn?.status ?? JSON.stringify(turn)} after ${ms} ms, not ${want.join(' or ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Listens on a free loopback port; returns the base URL (for SSE and real HTTP). */
export async function listen(app: App): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address() as import('node:net').AddressInfo;
  return `http://127.0.0.1:${addr.port}`;
}

export interface SseEvent {
  id: number | null;
  event: string;
  data: any;
  comment?: string;
}

/**
 * Opens an SSE stream and collects events until `until(events)` is true, the stream ends, or
 * `ms` pass. Comments (heartbeats) are collected with event ''.
 */
export async function readSse(
  url: string,
  opts: { method?: string; body?: unknown; headers?: Record<string, string>; until?: (evs: SseEvent[]) => boolean; ms?: number } = {},
): Promise<{ status: number; events: SseEvent[]; ended: boolean }> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), opts.ms ?? 30_000);
  const events: SseEvent[] = [];
  let ended = false;
  let status = 0;
  try {
    const res = await fetch(url, {
      method: opts.method ?? 'GET',
      headers: { accept: 'text/event-stream', ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : null,
      signal: ctrl.signal,
    });
    status = res.status;
    if (!res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      events.push({ id: null, event: 'http', data: await res.json().catch(() => null) });
      return { status, events, ended: true };
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        ended = true;
        break;
      }
      buf += dec.decode(value, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev: SseEvent = { id: null, event: '', data: null };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) ev.comment = line.slice(1).trim();
          else if (line.startsWith('id: ')) ev.id = Number(line.slice(4));
          else if (line.startsWith('event: ')) ev.event = line.slice(7);
          else if (line.startsWith('data: ')) ev.data = JSON.parse(line.slice(6));
        }
        events.push(ev);
      }
      if (opts.until?.(events)) {
        ctrl.abort();
        break;
      }
    }
  } catch (err) {
    if ((err as Error).name !== 'AbortError') throw err;
  } finally {
    clearTimeout(timer);
  }
  return { status, events, ended };
}

/** The text a turn streamed: its text deltas, in order. */
export function streamedText(events: SseEvent[]): string {
  return events
    .filter(
      (e) =>
        e.event === 'message' && e.data?.type === 'stream_event' && e.data.event?.type === 'content_block_delta' && e.data.event.delta?.type === 'text_delta',
    )
    .map((e) => e.data.event.delta.text)
    .join('');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Spawns the real server process, as `npm start` runs it (its Node flags; from source, through tsx), with `env` over the test's own. */
/**
 * Runs the server process as `npm start` does, in fresh folders, until it exits by itself (killed
 * after 30 s); its exit code and what it wrote on stderr.
 */
export async function runServerUntilExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const child = spawnServer({
    ...(await folderEnv(makeDirs())),
    PORT: String(await freePort()),
    MODEL_BACKEND: 'offline',
    LOG_LEVEL: 'warn',
    ...env,
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await exited(child);
  clearTimeout(timer);
  return { code, stderr };
}

/** The environment that puts a server process on a set of test folders (and their database). */
export async function folderEnv(dirs: TestDirs): Promise<Record<string, string>> {
  return { ...(await dbEnv(dirs)), DATA_DIR: dirs.dataDir, WORKSPACE_ROOT: dirs.workspace, CLAUDE_CONFIG_DIR: dirs.configDir };
}

export function spawnServer(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...START_NODE_FLAGS, '--import', 'tsx', 'src/server.ts'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts the real server process on the offline model and waits until it serves. */
export async function startServer(env: Record<string, string>) {
  const port = await freePort();
  const child = spawnServer({ LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1', MODEL_BACKEND: 'offline' });
  let log = '';
  child.stdout!.on('data', (d) => (log += d));
  child.stderr!.on('data', (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const up = await waitFor(async () => (await fetch(`${base}/health`).catch(() => null))?.ok, 30_000, 200);
  if (!up) throw new Error(`server did not start: ${log}`);
  return { child, base, log: () => log };
}

/** The exit code of a child (null: ended by a signal), also when it has ended already. */
export const exited = (c: ChildProcess) =>
  new Promise<number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

/** Runs the Claude Code binary itself, as a person would from a terminal in `cwd`. */
export async function terminalSession(t: TestApp, cwd: string, prompt: string): Promise<string> {
  const id = randomUUID();
  const model = await offlineModel();
  fs.mkdirSync(cwd, { recursive: true });
  await promisify(execFile)(cliBinaryPath(), ['-p', prompt, '--session-id', id, '--permission-mode', 'default'], {
    cwd,
    timeout: 60_000,
    env: {
      ...process.env,
      CLAUDE_CONFIG_DIR: t.config.claudeConfigDir,
      ANTHROPIC_BASE_URL: model.url,
      ANTHROPIC_API_KEY: 'offline-model',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    },
  });
  return id;
}

/** Waits for a turn to finish, allowing every tool call it asks for on the way (as the caller of `headers`). */
export async function finishTurnApproving(t: TestApp, sessionId: string, turnId: string, headers: Record<string, string> = {}, ms = 60_000): Promise<any> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const turn = (await call(t.app, 'GET', `/v1/sessions/${sessionId}/turns/${turnId}`, undefined, headers)).body;
    if (!['queued', 'running'].includes(turn.status)) return turn;
    const reqs = (await call(t.app, 'GET', `/v1/sessions/${sessionId}/permissions`, undefined, headers)).body.requests ?? [];
    for (const q of reqs) await call(t.app, 'POST', `/v1/sessions/${sessionId}/permissions/${q.request_id}`, { behavior: 'allow' }, headers);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`turn ${turnId} did not finish in ${ms} ms`);
}

/** Starts a turn (`?wait=false`) and finishes it with finishTurnApproving. */
export async function runApproving(
  t: TestApp,
  sessionId: string,
  prompt: string,
  opts: { headers?: Record<string, string>; mode?: string | undefined } = {},
): Promise<any> {
  const r = await call(
    t.app,
    'POST',
    `/v1/sessions/${sessionId}/turns?wait=false`,
    { prompt, ...(opts.mode ? { permission_mode: opts.mode } : {}) },
    opts.headers,
  );
  if (r.status !== 202) throw new Error(`turn not accepted: ${r.status} ${JSON.stringify(r.body)}`);
  return finishTurnApproving(t, sessionId, r.body.turn_id, opts.headers);
}
