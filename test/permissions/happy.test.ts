import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, makeDirs, readSse, startApp, transcriptPrompts, waitFor, type TestApp, useApp } from '../helper.js';

async function pending(t: TestApp, sessionId: string) {
  return waitFor(async () => (await call(t.app, 'GET', `/v1/sessions/${sessionId}/permissions`)).body.requests[0], 20_000);
}
async function finished(t: TestApp, sessionId: string, turnId: string) {
  return waitFor(async () => {
    const x = (await call(t.app, 'GET', `/v1/sessions/${sessionId}/turns/${turnId}`)).body;
    return ['succeeded', 'failed', 'interrupted'].includes(x.status) ? x : null;
  }, 30_000);
}

describe('tool approvals over HTTP, through the real CLI', () => {
  const t = useApp({ listen: true });

  it('the tool runs only after an allow; the request is announced, listed and decided once', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const marker = path.join(s.cwd, 'allowed-file');
    const stream = readSse(`${t.base}/v1/sessions/${s.session_id}/events`, { until: (evs) => evs.some((e) => e.event === 'done') });
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const req = await pending(t, s.session_id);
    expect(req).toMatchObject({ tool_name: 'Bash', status: 'pending', turn_id: turn.turn_id, input: { command: `touch ${marker}` } });
    expect(req.suggestions[0]).toMatchObject({ type: 'addRules', behavior: 'allow', destination: 'session' });
    await new Promise((r) => setTimeout(r, 300));
    expect(fs.existsSync(marker)).toBe(false);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body.status).toBe('running');

    const d = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'allow' });
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ status: 'allowed', scope: 'once', decided_by: 'local' });
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'deny' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('PERMISSION_ALREADY_DECIDED');

    const fin = await finished(t, s.session_id, turn.turn_id);
    expect(fin.status).toBe('succeeded');
    expect(fin.result).toMatch(/The command ran/);
    expect(fs.existsSync(marker)).toBe(true);
    const evs = (await stream).events.filter((e) => e.id !== null);
    const kinds = evs.map((e) => e.event);
    expect(kinds.indexOf('permission_request')).toBeGreaterThan(0);
    expect(kinds.indexOf('permission_resolved')).toBeGreaterThan(kinds.indexOf('permission_request'));
    expect(evs.find((e) => e.event === 'permission_request')!.data).toMatchObject({ request_id: req.request_id, tool_name: 'Bash', turn_id: turn.turn_id });
    expect(evs.find((e) => e.event === 'permission_resolved')!.data).toMatchObject({ request_id: req.request_id, behavior: 'allow', by: 'local' });
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions`)).body.requests).toEqual([]);
  });

  it('a deny reaches the model as a denial and the tool does not run', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const marker = path.join(s.cwd, 'denied-file');
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const req = await pending(t, s.session_id);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'deny', message: 'Not on this machine.' });
    const fin = await finished(t, s.session_id, turn.turn_id);
    expect(fin.status).toBe('succeeded');
    expect(fin.result).toMatch(/refused or failed.*Not on this machine/);
    expect(fs.existsSync(marker)).toBe(false);
    // The decision stays listed with ?status=all (a page shows "You denied Bash" after a reload), tied to its tool call.
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions`)).body.requests).toEqual([]);
    const all = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions?status=all&limit=10`)).body.requests;
    expect(all.map((r: any) => [r.request_id, r.status, r.tool_name, r.tool_use_id])).toEqual([[req.request_id, 'denied', 'Bash', req.tool_use_id]]);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions?status=decided`)).status).toBe(400);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions?status=all&limit=501`)).status).toBe(400);
  });

  it('scope session allows the same call again without a prompt', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const file = path.join(s.cwd, 'counted');
    const cmd = `[[bash:echo x >> ${file}]]`;
    const first = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: cmd })).body;
    const req = await pending(t, s.session_id);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'allow', scope: 'session' });
    expect((await finished(t, s.session_id, first.turn_id)).status).toBe('succeeded');
    const second = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: cmd });
    expect(second.body.status).toBe('succeeded');
    expect(second.body.result).toMatch(/The command ran/);
    expect(fs.readFileSync(file, 'utf8')).toBe('x\nx\n');
    // A different command still asks.
    const other = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:echo y >> ${file}]]` })).body;
    const req2 = await pending(t, s.session_id);
    expect(req2.input.command).toBe(`echo y >> ${file}`);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req2.request_id}`, { behavior: 'deny' });
    await finished(t, s.session_id, other.turn_id);
  });

  it('updated_input runs the tool with the input the person gave', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const asked = path.join(s.cwd, 'asked-for');
    const given = path.join(s.cwd, 'given-instead');
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${asked}]]` })).body;
    const req = await pending(t, s.session_id);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, {
      behavior: 'allow',
      updated_input: { command: `touch ${given}`, description: 'safer' },
    });
    expect((await finished(t, s.session_id, turn.turn_id)).status).toBe('succeeded');
    expect(fs.existsSync(given)).toBe(true);
    expect(fs.existsSync(asked)).toBe(false);
  });

  it('interrupting the turn denies what is pending; the session stays usable', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const marker = path.join(s.cwd, 'interrupted-file');
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const req = await pending(t, s.session_id);
    expect((await call(t.app, 'POST', `/v1/sessions/${s.session_id}/interrupt`, {})).status).toBe(202);
    const fin = await finished(t, s.session_id, turn.turn_id);
    expect(fin.status).toBe('interrupted');
    expect(fs.existsSync(marker)).toBe(false);
    const decided = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'allow' });
    expect(decided.status).toBe(409);
    const next = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(next.body.result).toMatch(/blue/);
  });
});

describe('an unanswered request is denied after PERMISSION_TIMEOUT_MS', () => {
  const t = useApp({ env: { PERMISSION_TIMEOUT_MS: '800' } });

  it('expires, the model sees the denial, the tool never runs', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const marker = path.join(s.cwd, 'expired-file');
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[bash:touch ${marker}]]` });
    expect(r.body.status).toBe('succeeded');
    expect(r.body.result).toMatch(/refused or failed/);
    expect(fs.existsSync(marker)).toBe(false);
  });
});

describe('a pending approval survives a restart of the server', () => {
  const dirs = makeDirs();
  let t: TestApp;
  afterAll(async () => t?.close());

  it('is decided after the restart, and the turn goes on', async () => {
    t = await startApp({ dirs });
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const marker = path.join(s.cwd, 'after-restart');
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: `[[bash:touch ${marker}]]` })).body;
    const req = await pending(t, s.session_id);
    await t.close();

    t = await startApp({ dirs });
    const still = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/permissions`);
    expect(still.body.requests.map((r: any) => r.request_id)).toEqual([req.request_id]);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turn.turn_id}`)).body.status).toBe('running');
    expect(fs.existsSync(marker)).toBe(false);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/permissions/${req.request_id}`, { behavior: 'allow' });
    const fin = await finished(t, s.session_id, turn.turn_id);
    expect(fin.status).toBe('succeeded');
    expect(fin.result).toMatch(/The command ran/);
    expect(fs.existsSync(marker)).toBe(true);
    const next = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(next.body.result).toMatch(/blue/);
    expect(transcriptPrompts(s.transcript.path)).toEqual(['Remember: my favorite color is blue', `[[bash:touch ${marker}]]`, 'What is my favorite color?']);
  });
});
