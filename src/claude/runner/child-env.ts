/**
 * @module claude/runner/child-env
 * What a CLI process starts with besides its options: its environment (the server's, less what
 * only the server may know, plus what the CLI must see) and its session's private TMPDIR, and the
 * last look at a session's folder before a process starts there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { AppError } from '../../errors.js';
import type { ModelEndpoint } from './types.js';

/** Server settings that are secrets or that a tool could abuse: kept out of every CLI's environment. */
// CLAUDE_CODE_PROJECT_DIR_NAME would move transcripts away from where paths.ts (and the store key) expect them.
export const SERVER_ONLY_ENV = [
  'API_KEYS',
  'ADMIN_USERS',
  'DATABASE_URL',
  'IS_SANDBOX',
  'TEST_PG_URL',
  'ALLOWED_PERMISSION_MODES',
  'CLAUDE_CODE_PROJECT_DIR_NAME',
];

/** The environment of every CLI process: the server's, plus what the CLI must see. */
export function childEnv(o: { configDir: string; tmpDir: string; model: ModelEndpoint; sandboxOptIn: boolean }): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    CLAUDE_CONFIG_DIR: o.configDir,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    TMPDIR: o.tmpDir,
    CLAUDE_AGENT_SDK_CLIENT_APP: 'claude-session-server',
  };
  // What the server alone may know never reaches a CLI (nor the tools it runs for users).
  for (const k of SERVER_ONLY_ENV) delete env[k];
  if (o.sandboxOptIn) env.IS_SANDBOX = '1';
  if (o.model.backend === 'offline') {
    env.ANTHROPIC_BASE_URL = o.model.baseUrl;
    env.ANTHROPIC_API_KEY = 'offline-model';
    delete env.ANTHROPIC_AUTH_TOKEN;
  } else {
    if (o.model.baseUrl) env.ANTHROPIC_BASE_URL = o.model.baseUrl;
    if (o.model.apiKey) env.ANTHROPIC_API_KEY = o.model.apiKey;
    if (o.model.authToken) env.ANTHROPIC_AUTH_TOKEN = o.model.authToken;
  }
  return env;
}

/**
 * The last look at a session's folder by path, just before its process starts (the process
 * registry checks where the process really is once it runs).
 */
export function assertRealFolder(cwd: string): void {
  let real: string;
  try {
    real = fs.realpathSync.native(cwd);
  } catch {
    throw new AppError('INVALID_PROJECT', `the session's folder ${cwd} no longer exists`);
  }
  if (real !== cwd) throw new AppError('INVALID_PROJECT', `the session's folder ${cwd} now leads to ${real}`);
}

/** A session's TMPDIR. Short, since the CLI puts sockets in it (a socket path has at most 107 bytes). */
export const tmpDirOf = (parent: string, sessionId: string) => path.join(parent, createHash('sha256').update(sessionId).digest('hex').slice(0, 12));
export function sessionTmpDir(parent: string, sessionId: string): string {
  const dir = tmpDirOf(parent, sessionId);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Removes the sockets that ended CLI processes of a session left in its TMPDIR (the sandbox's
 * proxies name theirs by process id, and a process that is killed does not remove them): called
 * when no process of the session runs, before a new one starts. Without it a session restarted
 * many times (closed when idle, interrupted, resumed) gathers a few files per restart.
 */
export async function clearStaleSockets(parent: string, sessionId: string): Promise<void> {
  const dir = tmpDirOf(parent, sessionId);
  for (const d of [dir, path.join(dir, 'cc-socks')]) {
    const names = await fs.promises.readdir(d).catch(() => [] as string[]);
    await Promise.all(names.filter((n) => n.endsWith('.sock')).map((n) => fs.promises.rm(path.join(d, n), { force: true })));
  }
}

/** Removes what CLI processes of an earlier run left in the private TMPDIR. */
export function sweepTmpDir(tmpDir: string): void {
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
}
