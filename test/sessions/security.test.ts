import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startApp, type TestApp, useApp } from '../helper.js';

const ALICE = { authorization: 'Bearer key-alice-0123456789' };
const BOB = { authorization: 'Bearer key-bob-0123456789' };
const ROOT = { authorization: 'Bearer key-root-0123456789' };
const keysEnv = { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' };

describe("isolation: bob on alice's session", () => {
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

  it("lists never show another user's sessions; import and create cannot act for others", async () => {
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
  const t = useApp();

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
