import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { call, makeDirs, offlineModel, startApp, testConfig, type TestApp } from './helper.js';

const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };
const ROOT = { authorization: 'Bearer key-root-0123456789' };
const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' };

describe('API keys', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ env: keysEnv });
  });
  afterAll(async () => t.close());

  it('no key or a wrong key is a 401 JSON error; public paths need none', async () => {
    for (const headers of [{}, { authorization: "Bearer nope-nope-nope" }, { authorization: "Basic abc" }, { authorization: "Bearer " }] as Record<string, string>[]) {
      const r = await call(t.app, 'GET', '/v1/sessions', undefined, headers);
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHORIZED');
    }
    expect((await call(t.app, 'POST', '/v1/sessions', { prompt: 'x' })).status).toBe(401);
    expect((await call(t.app, 'GET', '/health')).status).toBe(200);
    expect((await call(t.app, 'GET', '/openapi.json')).status).toBe(200);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, ALICE)).status).toBe(200);
  });

  it('keys made with the keys command work, are listed without the key, and stop working when revoked', async () => {
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/auth/keys-cli.ts', ...args], {
        env: { ...process.env, DATA_DIR: t.dirs.dataDir, WORKSPACE_ROOT: t.dirs.workspace, CLAUDE_CONFIG_DIR: t.dirs.configDir },
      });
    const made = JSON.parse((await run(['create', '--user', 'carol', '--label', 'laptop'])).stdout);
    expect(made.key).toMatch(/^css_/);
    const carol = { authorization: `Bearer ${made.key}` };
    const s = await call(t.app, 'POST', '/v1/sessions', {}, carol);
    expect(s.status).toBe(201);
    expect(s.body.user_id).toBe('carol');
    const listed = (await run(['list'])).stdout;
    expect(listed).toContain(made.key_id);
    expect(listed).not.toContain(made.key);
    // Stored hashed: the key itself is nowhere in the database file.
    expect(fs.readFileSync(path.join(t.dirs.dataDir, 'server.db')).includes(Buffer.from(made.key))).toBe(false);
    await run(['revoke', made.key_id]);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, carol)).status).toBe(401);
    await expect(run(['create'])).rejects.toThrow();
  });
});

describe('who may start the server', () => {
  it('refuses to start on a non-loopback address with no keys', async () => {
    const dirs = makeDirs();
    await expect(buildApp(testConfig(dirs, { HOST: '0.0.0.0' }), { offlineModel: await offlineModel() })).rejects.toThrow(/refusing to start.*API_KEYS/);
  });
  it('starts on a non-loopback address with keys, and then every request needs one', async () => {
    const dirs = makeDirs();
    const app = await buildApp(testConfig(dirs, { HOST: '0.0.0.0', ...keysEnv }), { offlineModel: await offlineModel() });
    expect((await call(app, 'GET', '/v1/sessions')).status).toBe(401);
    expect((await call(app, 'GET', '/v1/sessions', undefined, BOB)).status).toBe(200);
    await app.close();
  });
  it('runs single-user as "local" on loopback with no keys', async () => {
    const t = await startApp();
    const s = await call(t.app, 'POST', '/v1/sessions', {});
    expect(s.body.user_id).toBe('local');
    await t.close();
  });
});

describe('per-key request rate', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ env: { ...keysEnv, RATE_LIMIT_PER_MINUTE: '5' } });
  });
  afterAll(async () => t.close());

  it('answers 429 with Retry-After past the limit, for that key only', async () => {
    for (let i = 0; i < 5; i++) expect((await call(t.app, 'GET', '/v1/sessions', undefined, ALICE)).status).toBe(200);
    const r = await call(t.app, 'GET', '/v1/sessions', undefined, ALICE);
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('RATE_LIMITED');
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, BOB)).status).toBe(200);
    expect((await call(t.app, 'GET', '/health')).status).toBe(200);
  });
});

describe('isolation: bob on alice\'s session', () => {
  let t: TestApp;
  let alice: any;
  let turnId: string;
  beforeAll(async () => {
    t = await startApp({ env: keysEnv });
    alice = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', session_name: 'secret' }, ALICE)).body;
    turnId = alice.turn.turn_id;
  });
  afterAll(async () => t.close());

  const routes = (id: string, turn: string): Array<[string, string, unknown?]> => [
    ['GET', `/v1/sessions/${id}`],
    ['PATCH', `/v1/sessions/${id}`, { session_name: 'mine now' }],
    ['DELETE', `/v1/sessions/${id}`],
    ['DELETE', `/v1/sessions/${id}?purge=true`],
    ['POST', `/v1/sessions/${id}/fork`, {}],
    ['GET', `/v1/sessions/${id}/messages`],
    ['POST', `/v1/sessions/${id}/turns`, { prompt: 'What is my favorite color?' }],
    ['GET', `/v1/sessions/${id}/turns`],
    ['GET', `/v1/sessions/${id}/turns/${turn}`],
    ['DELETE', `/v1/sessions/${id}/turns/${turn}`],
    ['GET', `/v1/sessions/${id}/turns/${turn}/events`],
    ['GET', `/v1/sessions/${id}/events`],
    ['POST', `/v1/sessions/${id}/interrupt`, {}],
    ['GET', `/v1/sessions/${id}/permissions`],
    ['POST', `/v1/sessions/${id}/permissions/${randomUUID()}`, { behavior: 'allow' }],
    ['POST', '/v1/query', { session_id: id, query: 'What is my favorite color?' }],
  ];

  it('every session route answers 404 exactly as for a session that does not exist', async () => {
    const missing = randomUUID();
    for (const [method, url, body] of routes(alice.session_id, turnId)) {
      const r = await call(t.app, method as any, url, body, BOB);
      const m = await call(t.app, method as any, url.replace(alice.session_id, missing), body, BOB);
      expect([r.status, r.body?.error?.code], `${method} ${url}`).toEqual([404, 'SESSION_NOT_FOUND']);
      expect([m.status, m.body?.error?.code], `${method} ${url} (missing)`).toEqual([404, 'SESSION_NOT_FOUND']);
    }
    // Nothing bob did changed alice's session.
    const still = await call(t.app, 'GET', `/v1/sessions/${alice.session_id}`, undefined, ALICE);
    expect(still.body).toMatchObject({ session_name: 'secret', status: 'active', turn_count: 1 });
    expect(fs.existsSync(alice.transcript.path)).toBe(true);
  });

  it('lists never show another user\'s sessions; import and create cannot act for others', async () => {
    expect((await call(t.app, 'GET', '/v1/sessions', undefined, BOB)).body.sessions).toEqual([]);
    expect((await call(t.app, 'GET', '/v1/sessions?q=secret', undefined, BOB)).body.sessions).toEqual([]);
    expect((await call(t.app, 'GET', '/v1/sessions?user_id=alice', undefined, BOB)).status).toBe(400);
    expect((await call(t.app, 'POST', '/v1/sessions', { user_id: 'alice' }, BOB)).status).toBe(400);
    expect((await call(t.app, 'POST', '/v1/sessions/import', { user_id: 'alice' }, BOB)).status).toBe(400);
  });

  it('an admin may act for others', async () => {
    const got = await call(t.app, 'GET', `/v1/sessions/${alice.session_id}`, undefined, ROOT);
    expect(got.status).toBe(200);
    const listed = await call(t.app, 'GET', '/v1/sessions?user_id=alice', undefined, ROOT);
    expect(listed.body.sessions.map((s: any) => s.session_id)).toEqual([alice.session_id]);
    const made = await call(t.app, 'POST', '/v1/sessions', { user_id: 'bob' }, ROOT);
    expect(made.body.user_id).toBe('bob');
    expect((await call(t.app, 'GET', `/v1/sessions/${made.body.session_id}`, undefined, BOB)).status).toBe(200);
  });
});

describe('paths cannot escape the workspace', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(async () => t.close());

  it('a symlink put in place of a session folder after the session was made is refused', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'swap', prompt: 'hello' })).body;
    fs.rmSync(s.cwd, { recursive: true });
    fs.symlinkSync(t.dirs.root, s.cwd);
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'again' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('INVALID_PROJECT');
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns).toHaveLength(1);
  });
});
