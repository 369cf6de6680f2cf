import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startApp, terminalSession, type TestApp, useApp } from '../helper.js';

describe('import of sessions started from a terminal', () => {
  const t = useApp();

  it('adopts a terminal session of one project, idempotently, and resumes it', async () => {
    const id = await terminalSession(t, path.join(t.dirs.workspace, 'local', 'term.proj'), 'Remember: my favorite color is green');
    const first = await call(t.app, 'POST', '/v1/sessions/import', { project: 'term.proj' });
    expect(first.status).toBe(200);
    expect(first.body.imported).toBe(1);
    expect(first.body.already_known).toBe(0);
    expect(first.body.sessions[0].session_id).toBe(id);
    expect(first.body.sessions[0].first_prompt).toMatch(/green/);

    const again = await call(t.app, 'POST', '/v1/sessions/import', { project: 'term.proj' });
    expect(again.body).toMatchObject({ imported: 0, already_known: 1 });

    const listed = await call(t.app, 'GET', '/v1/sessions?project=term.proj');
    expect(listed.body.sessions.map((s: any) => s.session_id)).toEqual([id]);

    const turn = await call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: 'What is my favorite color?' });
    expect(turn.status).toBe(200);
    expect(turn.body.result).toMatch(/green/);
  });

  it("adopts sessions of every folder of the caller's when no project is given, and none from outside it", async () => {
    const inside = await terminalSession(t, path.join(t.dirs.workspace, 'local', 'other dir'), 'Remember: my favorite fruit is a pear');
    const outside = await terminalSession(t, path.join(t.dirs.root, 'not-in-workspace'), 'hello from outside');
    // In the workspace, but not in the caller's own folder.
    const atRoot = await terminalSession(t, path.join(t.dirs.workspace, 'at-root'), 'hello from the root');
    const r = await call(t.app, 'POST', '/v1/sessions/import', {});
    expect(r.status).toBe(200);
    const ids = r.body.sessions.map((s: any) => s.session_id);
    expect(ids).toContain(inside);
    expect(ids).not.toContain(outside);
    expect(ids).not.toContain(atRoot);
    expect(r.body.already_known).toBeGreaterThanOrEqual(1); // the one from the first test
    const got = await call(t.app, 'GET', `/v1/sessions/${outside}`);
    expect(got.status).toBe(404);
  });
});

describe('import with several users', () => {
  let t: TestApp;
  const as = (user: string) => ({ authorization: `Bearer key-${user}-0123456789` });
  beforeAll(async () => {
    t = await startApp({ env: { API_KEYS: 'alice:key-alice-0123456789,bob:key-bob-0123456789,root:key-root-0123456789', ADMIN_USERS: 'root' } });
  });
  afterAll(async () => t.close());

  it("tells nobody of another user's sessions, and creates no folder for a project that is not there", async () => {
    const id = await terminalSession(t, path.join(t.dirs.workspace, 'alice', 'shared'), 'hello from a terminal');
    const alice = await call(t.app, 'POST', '/v1/sessions/import', { project: 'shared' }, as('alice'));
    expect(alice.body).toMatchObject({ imported: 1, already_known: 0 });
    expect((await call(t.app, 'POST', '/v1/sessions/import', { project: 'shared' }, as('alice'))).body).toMatchObject({ imported: 0, already_known: 1 });
    // Bob is told nothing of it: not imported, and not counted as known either.
    for (const body of [{ project: 'shared' }, {}]) {
      const bob = await call(t.app, 'POST', '/v1/sessions/import', body, as('bob'));
      expect(bob.body).toEqual({ imported: 0, already_known: 0, sessions: [] });
    }
    expect((await call(t.app, 'GET', `/v1/sessions/${id}`, undefined, as('bob'))).status).toBe(404);
    // A project folder that is not there: nothing to adopt, and nothing made.
    const none = await call(t.app, 'POST', '/v1/sessions/import', { project: 'not/there' }, as('alice'));
    expect([none.status, none.body]).toEqual([200, { imported: 0, already_known: 0, sessions: [] }]);
    expect(fs.existsSync(path.join(t.dirs.workspace, 'alice', 'not'))).toBe(false);
    // Still checked like any project: one leading out is refused.
    expect((await call(t.app, 'POST', '/v1/sessions/import', { project: '../x' }, as('alice'))).status).toBe(400);
  });

  it("looks only in the caller's own folder: Bob cannot adopt what was started in Alice's, an admin acting for Bob looks in Bob's", async () => {
    const inAlice = await terminalSession(t, path.join(t.dirs.workspace, 'alice', 'notes'), 'hello from alice');
    const inBob = await terminalSession(t, path.join(t.dirs.workspace, 'bob', 'notes'), 'hello from bob');
    const bob = await call(t.app, 'POST', '/v1/sessions/import', { project: 'notes' }, as('bob'));
    expect(bob.body.sessions.map((s: any) => s.session_id)).toEqual([inBob]);
    expect((await call(t.app, 'GET', `/v1/sessions/${inAlice}`, undefined, as('bob'))).status).toBe(404);
    const forAlice = await call(t.app, 'POST', '/v1/sessions/import', { user_id: 'alice' }, as('root'));
    expect(forAlice.body.sessions.map((s: any) => [s.session_id, s.user_id, s.project])).toEqual([[inAlice, 'alice', 'notes']]);
    // An admin's session made for Bob lives in Bob's folder.
    const made = await call(t.app, 'POST', '/v1/sessions', { user_id: 'bob', project: 'by-admin' }, as('root'));
    expect(made.body.cwd).toBe(path.join(t.dirs.workspace, 'bob', 'by-admin'));
  });
});
