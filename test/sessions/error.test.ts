import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClaudeRunner } from '../../src/claude/runner/index.js';
import { isRoot } from '../../src/claude/permission-mode.js';
import { AppError } from '../../src/errors.js';
import { call, offlineModel, startApp, type TestApp, useApp } from '../helper.js';

function expectError(r: { status: number; body: any }, status: number, code: string) {
  expect(r.status).toBe(status);
  expect(r.body.error.code).toBe(code);
  expect(typeof r.body.error.message).toBe('string');
  expect(r.body.error.request_id).toMatch(/^[0-9a-f-]{36}$/);
}

describe('client mistakes get a 4xx JSON error and write nothing', () => {
  let t: TestApp;
  let started: string;
  beforeAll(async () => {
    t = await startApp({ env: { MAX_PROMPT_CHARS: '1000', BODY_LIMIT: '65536', ALLOWED_PERMISSION_MODES: 'default,plan,bypassPermissions' } });
    started = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body.session_id;
  });
  afterAll(async () => t.close());

  const sessionCount = async () => (await call(t.app, 'GET', '/v1/sessions?limit=200')).body.sessions.length;

  it('malformed JSON', async () => {
    const r = await call(t.app, 'POST', '/v1/sessions', '{"prompt": "hi"');
    expectError(r, 400, 'INVALID_REQUEST');
    expect(r.headers['x-request-id']).toBe(r.body.error.request_id);
  });

  it("keeps a client's plain request id, and replaces a long or strange one", async () => {
    const send = (id: string) => t.app.inject({ method: 'GET', url: '/v1/sessions/not-a-uuid', headers: { 'x-request-id': id } });
    const kept = await send('trace-42.a:b_c');
    expect([kept.headers['x-request-id'], kept.json().error.request_id]).toEqual(['trace-42.a:b_c', 'trace-42.a:b_c']);
    for (const id of ['x'.repeat(129), 'a b', '<script>', 'é']) {
      const r = await send(id);
      expect(r.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.json().error.request_id).toBe(r.headers['x-request-id']);
    }
  });

  it('a body that is not JSON', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expectError({ status: r.statusCode, body: r.json() }, 400, 'INVALID_REQUEST');
  });

  it('wrong types', async () => {
    const before = await sessionCount();
    expectError(await call(t.app, 'POST', '/v1/sessions', { prompt: 123 }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'POST', '/v1/sessions', { session_name: ['x'] }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'POST', `/v1/sessions/${started}/turns`, { prompt: { text: 'x' } }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'GET', '/v1/sessions?limit=abc'), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'GET', '/v1/sessions?limit=500'), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'yolo' }), 400, 'INVALID_REQUEST');
    expect(await sessionCount()).toBe(before);
  });

  it('unknown fields', async () => {
    const before = await sessionCount();
    expectError(await call(t.app, 'POST', '/v1/sessions', { session_name: 'x', sessionName: 'y' }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'PATCH', `/v1/sessions/${started}`, { title: 'x' }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'POST', '/v1/query', { session: started, query: 'x' }), 400, 'INVALID_REQUEST');
    expect(await sessionCount()).toBe(before);
  });

  it('over-long values', async () => {
    expectError(await call(t.app, 'POST', '/v1/sessions', { session_name: 'x'.repeat(201) }), 400, 'INVALID_REQUEST');
    // A prompt over MAX_PROMPT_CHARS is too large (413), like a body over BODY_LIMIT.
    expectError(await call(t.app, 'POST', `/v1/sessions/${started}/turns`, { prompt: 'x'.repeat(1001) }), 413, 'PAYLOAD_TOO_LARGE');
    expectError(await call(t.app, 'POST', '/v1/sessions', { prompt: 'x'.repeat(1001) }), 413, 'PAYLOAD_TOO_LARGE');
    expectError(await call(t.app, 'POST', '/v1/query', { session_id: started, query: 'x'.repeat(1001) }), 413, 'PAYLOAD_TOO_LARGE');
    expectError(await call(t.app, 'POST', '/v1/sessions', { prompt: 'x'.repeat(70_000) }), 413, 'PAYLOAD_TOO_LARGE');
    const turns = await call(t.app, 'GET', `/v1/sessions/${started}/turns`);
    expect(turns.body.turns).toHaveLength(1);
  });

  it('ids that are not UUIDs', async () => {
    expectError(await call(t.app, 'GET', '/v1/sessions/not-a-uuid'), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'POST', '/v1/sessions/../../etc/turns', { prompt: 'x' }), 404, 'NOT_FOUND');
    expectError(await call(t.app, 'POST', '/v1/query', { session_id: 'abc', query: 'x' }), 400, 'INVALID_REQUEST');
    expectError(await call(t.app, 'GET', `/v1/sessions/${started}/turns/nope`), 400, 'INVALID_REQUEST');
  });

  it('unknown session and unknown turn', async () => {
    const id = randomUUID();
    expectError(await call(t.app, 'GET', `/v1/sessions/${id}`), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'PATCH', `/v1/sessions/${id}`, { session_name: 'x' }), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'DELETE', `/v1/sessions/${id}`), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: 'x' }), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'POST', `/v1/sessions/${id}/fork`, {}), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'GET', `/v1/sessions/${id}/messages`), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'POST', '/v1/query', { session_id: id, query: 'x' }), 404, 'SESSION_NOT_FOUND');
    expectError(await call(t.app, 'GET', `/v1/sessions/${started}/turns/${randomUUID()}`), 404, 'TURN_NOT_FOUND');
    expectError(await call(t.app, 'GET', '/v1/nothing-here'), 404, 'NOT_FOUND');
  });

  it('a resume of an id the CLI does not know is SESSION_NOT_FOUND, from the real CLI', async () => {
    const runner = createClaudeRunner({
      configDir: t.config.claudeConfigDir,
      tmpDir: path.join(t.dirs.dataDir, 'tmp-runner'),
      model: { backend: 'offline', baseUrl: (await offlineModel()).url },
      sandboxOptIn: false,
      turnTimeoutMs: 60_000,
    });
    const err = await runner
      .runTurn({ sessionId: randomUUID(), cwd: t.dirs.workspace, prompt: 'hello', resume: true, permissionMode: 'default' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err.code).toBe('SESSION_NOT_FOUND');
    expect(runner.stats().warm).toBe(0);
    await runner.closeAll();
  });

  it('invalid projects are refused before anything is written', async () => {
    const before = await sessionCount();
    for (const project of ['../outside', '/etc', 'a/../../b', 'x\u0000y', '%2e%2e/x', 'a\\b']) {
      // (A NUL is refused in any text, before a project is looked at.)
      const code = project.includes('\u0000') ? 'INVALID_REQUEST' : 'INVALID_PROJECT';
      expectError(await call(t.app, 'POST', '/v1/sessions', { project, prompt: 'hi' }), 400, code);
      // The list's filter is checked the same way.
      expectError(await call(t.app, 'GET', `/v1/sessions?project=${encodeURIComponent(project)}`), 400, code);
    }
    // Projects are relative to the caller's own folder (single-user: `local`).
    fs.mkdirSync(path.join(t.dirs.workspace, 'local'), { recursive: true });
    fs.symlinkSync('/tmp', path.join(t.dirs.workspace, 'local', 'link-out'));
    expectError(await call(t.app, 'POST', '/v1/sessions', { project: 'link-out/x', prompt: 'hi' }), 400, 'INVALID_PROJECT');
    expect(fs.existsSync('/tmp/x')).toBe(false);
    expect(await sessionCount()).toBe(before);
  });

  it('the list filter by project is normalized as at creation', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { project: 'p1//' })).body;
    expect(s.project).toBe('p1');
    for (const project of ['p1', 'p1/', './p1', 'p1//.']) {
      const ids = (await call(t.app, 'GET', `/v1/sessions?project=${encodeURIComponent(project)}`)).body.sessions.map((x: any) => x.session_id);
      expect(ids, project).toEqual([s.session_id]);
    }
  });

  it('a bad replay position', async () => {
    const turn = (await call(t.app, 'GET', `/v1/sessions/${started}/turns`)).body.turns[0];
    for (const url of [`/v1/sessions/${started}/events`, `/v1/sessions/${started}/turns/${turn.turn_id}/events`]) {
      expectError(await call(t.app, 'GET', url, undefined, { 'last-event-id': 'abc' }), 400, 'INVALID_REQUEST');
      expectError(await call(t.app, 'GET', url, undefined, { 'last-event-id': '-5' }), 400, 'INVALID_REQUEST');
      expectError(await call(t.app, 'GET', `${url}?after=abc`), 400, 'INVALID_REQUEST');
      // Past any id, the same way in the header and in the query.
      expectError(await call(t.app, 'GET', url, undefined, { 'last-event-id': '99999999999999999999' }), 400, 'INVALID_REQUEST');
      expectError(await call(t.app, 'GET', `${url}?after=99999999999999999999`), 400, 'INVALID_REQUEST');
    }
  });

  it('a bad cursor', async () => {
    expectError(await call(t.app, 'GET', '/v1/sessions?cursor=garbage'), 400, 'INVALID_REQUEST');
  });

  it('a vanished transcript is named, not a 500 and not a new conversation', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    fs.rmSync(s.transcript.path);
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expectError(r, 409, 'TRANSCRIPT_MISSING');
    expect(r.body.error.message).toContain(s.transcript.path);
    expect(fs.existsSync(s.transcript.path)).toBe(false);
    const turns = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`);
    expect(turns.body.turns).toHaveLength(1);
    expectError(await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages`), 409, 'TRANSCRIPT_MISSING');
    expectError(await call(t.app, 'POST', `/v1/sessions/${s.session_id}/fork`, {}), 409, 'TRANSCRIPT_MISSING');
    const got = await call(t.app, 'GET', `/v1/sessions/${s.session_id}`);
    expect(got.body.transcript).toMatchObject({ exists: false, path: s.transcript.path });
  });

  it(`bypassPermissions as root without the opt-in (running as ${isRoot() ? 'root' : 'non-root'})`, async () => {
    const before = await sessionCount();
    const r = await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'bypassPermissions', prompt: 'hi' });
    if (isRoot()) {
      expectError(r, 400, 'PERMISSION_MODE_REFUSED');
      expect(r.body.error.message).toMatch(/IS_SANDBOX=1/);
      expect(await sessionCount()).toBe(before);
      expectError(
        await call(t.app, 'POST', `/v1/sessions/${started}/turns`, { prompt: 'hi', permission_mode: 'bypassPermissions' }),
        400,
        'PERMISSION_MODE_REFUSED',
      );
    } else {
      expect(r.status).toBe(201);
      expect(r.body.turn.status).toBe('succeeded');
    }
  });
});

describe('bypassPermissions with the operator opt-in IS_SANDBOX=1', () => {
  const t = useApp({ env: { IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' } });

  it('runs a tool call without asking', async () => {
    // In the session's folder (the sandbox lets commands write only there): no approval asked.
    const marker = path.join(t.dirs.workspace, 'local', 'bypass-proof');
    const r = await call(t.app, 'POST', '/v1/sessions', { permission_mode: 'bypassPermissions', prompt: `[[bash:touch ${marker}]]` });
    expect(r.status).toBe(201);
    expect(r.body.turn.status).toBe('succeeded');
    expect(r.body.turn.result).toMatch(/The command ran/);
    expect(fs.existsSync(marker)).toBe(true);
  });
});

describe('permission modes the operator has not allowed', () => {
  const t = useApp({ env: { IS_SANDBOX: '1' } });

  it('refuses bypassPermissions and acceptEdits by default, even with the root opt-in, and writes nothing', async () => {
    for (const mode of ['bypassPermissions', 'acceptEdits']) {
      const r = await call(t.app, 'POST', '/v1/sessions', { permission_mode: mode, prompt: 'hi' });
      expectError(r, 400, 'PERMISSION_MODE_REFUSED');
      expect(r.body.error.message).toMatch(/ALLOWED_PERMISSION_MODES/);
    }
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    expectError(
      await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'x', permission_mode: 'acceptEdits' }),
      400,
      'PERMISSION_MODE_REFUSED',
    );
    expect((await call(t.app, 'GET', '/v1/sessions')).body.sessions).toHaveLength(1);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns).toEqual([]);
  });
});
