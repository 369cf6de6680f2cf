import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cliProcesses, startApp, transcriptPrompts, waitFor, waitForTurn, type TestApp, useApp } from '../helper.js';

describe('turn engine: queue, interrupt, cancel, wait modes', () => {
  const t = useApp();

  const newSession = async (prompt = 'Remember: my favorite color is blue') => (await call(t.app, 'POST', '/v1/sessions', { prompt })).body;
  const turnOf = (sid: string, tid: string) => call(t.app, 'GET', `/v1/sessions/${sid}/turns/${tid}`).then((r) => r.body);

  it('10 concurrent queued turns on one session all reach the transcript, in order', async () => {
    const s = await newSession();
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `queued turn ${i}`, if_busy: 'queue' })),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(results.map((r) => r.body.status)).toEqual(Array(10).fill('succeeded'));
    const turns = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns?limit=50`)).body.turns;
    expect(turns).toHaveLength(11);
    const inOrder = turns.map((x: any) => x.prompt);
    expect(new Set(inOrder.slice(1))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => `queued turn ${i}`)));
    // The transcript holds every turn, in the order the server took them.
    expect(transcriptPrompts(s.transcript.path)).toEqual(inOrder);
    // Each turn ran after the previous one had finished.
    for (let i = 1; i < turns.length; i++) expect(Date.parse(turns[i].started_at)).toBeGreaterThanOrEqual(Date.parse(turns[i - 1].finished_at));
  });

  it('?wait=false answers 202 with the queued turn; the turn then runs', async () => {
    const s = await newSession();
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'What is my favorite color?' });
    expect(r.status).toBe(202);
    expect(['queued', 'running']).toContain(r.body.status);
    const fin = await waitForTurn(t.app, s.session_id, r.body.turn_id);
    expect(fin.status).toBe('succeeded');
    expect(fin.result).toMatch(/blue/);
  });

  it('interrupt ends the running turn as interrupted within a second; the session keeps its history', async () => {
    const s = await newSession();
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:20000]] a long job' });
    await waitForTurn(t.app, s.session_id, r.body.turn_id, 'running');
    const t0 = Date.now();
    const i = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/interrupt`, {});
    expect(i.status).toBe(202);
    expect(i.body.turn_id).toBe(r.body.turn_id);
    const fin = await waitForTurn(t.app, s.session_id, r.body.turn_id);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(fin.status).toBe('interrupted');
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(again.body.status).toBe('succeeded');
    expect(again.body.result).toMatch(/blue/);
    const none = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/interrupt`, {});
    expect(none.status).toBe(409);
    expect(none.body.error.code).toBe('NO_RUNNING_TURN');
  });

  it('if_busy interrupt stops the running turn, then runs', async () => {
    const s = await newSession();
    const slow = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:20000]] a long job' });
    await waitForTurn(t.app, s.session_id, slow.body.turn_id, 'running');
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', if_busy: 'interrupt' });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatch(/blue/);
    expect((await turnOf(s.session_id, slow.body.turn_id)).status).toBe('interrupted');
  });

  it('the queue is visible, a queued turn can be cancelled and never runs, a running one cannot', async () => {
    const s = await newSession();
    const slow = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] first' });
    // (Under a full suite's load the first turn may wait for a slot a moment: the queue is what follows it.)
    await waitForTurn(t.app, s.session_id, slow.body.turn_id, 'running');
    const a = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'second', if_busy: 'queue' });
    const b = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: 'third', if_busy: 'queue' });
    expect(a.body.status).toBe('queued');
    const queue = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns?status=queued`);
    expect(queue.body.turns.map((x: any) => x.turn_id)).toEqual([a.body.turn_id, b.body.turn_id]);
    const c = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${a.body.turn_id}`);
    expect(c.status).toBe(200);
    expect(c.body.status).toBe('cancelled');
    const again = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${a.body.turn_id}`);
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('TURN_NOT_CANCELLABLE');
    await waitForTurn(t.app, s.session_id, slow.body.turn_id, 'running');
    const running = await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}/turns/${slow.body.turn_id}`);
    expect(running.status).toBe(409);
    expect(running.body.error.code).toBe('TURN_NOT_CANCELLABLE');
    expect((await waitForTurn(t.app, s.session_id, b.body.turn_id)).status).toBe('succeeded');
    const prompts = transcriptPrompts(s.transcript.path);
    expect(prompts).toContain('third');
    expect(prompts).not.toContain('second');
  });

  it('keeps the session process warm between turns, and ends it when the session is deleted', async () => {
    const s = await newSession();
    const before = cliProcesses(t.config.claudeConfigDir);
    await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'again' });
    const after = cliProcesses(t.config.claudeConfigDir);
    // No new process for the second turn: the warm one answered it.
    expect(after.filter((p) => !before.includes(p))).toEqual([]);
    expect(t.app.internals.runner.stats().warm).toBeGreaterThanOrEqual(1);
    const warmBefore = t.app.internals.runner.stats().warm;
    await call(t.app, 'DELETE', `/v1/sessions/${s.session_id}`);
    expect(t.app.internals.runner.stats().warm).toBe(warmBefore - 1);
  });

  it('serves Prometheus metrics', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/css_turns_total\{status="succeeded"\} \d+/);
    expect(r.body).toMatch(/css_turns_total\{status="interrupted"\} [1-9]/);
    expect(r.body).toMatch(/css_turns_total\{status="cancelled"\} 1/);
    expect(r.body).toMatch(/css_turn_duration_seconds_bucket/);
    expect(r.body).toMatch(/css_turn_first_event_seconds_count [1-9]/);
    expect(r.body).toMatch(/css_cli_warm_processes [1-9]/);
    expect(r.body).toMatch(/css_turns_queued 0/);
    expect(r.body).toMatch(/css_sse_subscribers 0/);
  });
});

describe('warm processes are bounded by count', () => {
  let t: TestApp;
  beforeAll(async () => {
    // An idle time no run of this test reaches: only the count closes processes here.
    t = await startApp({ env: { MAX_WARM_SESSIONS: '2', WARM_IDLE_MS: '600000' } });
  });
  afterAll(async () => t.close());

  it('closes the least recently used past MAX_WARM_SESSIONS', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(t.app, 'POST', '/v1/sessions', { prompt: `session ${i}` })).body.session_id);
    expect(t.app.internals.runner.stats().warm).toBe(2);
    expect(t.app.internals.runner.liveSessions().sort()).toEqual(ids.slice(1).sort());
    expect(await waitFor(() => cliProcesses(t.config.claudeConfigDir).length === 2, 5_000)).toBe(true);
    // A turn on the closed session starts a process again, and the least recently used one gives way.
    expect((await call(t.app, 'POST', `/v1/sessions/${ids[0]}/turns`, { prompt: 'again' })).body.status).toBe('succeeded');
    expect(new Set(t.app.internals.runner.liveSessions())).toEqual(new Set([ids[0], ids[2]]));
    expect(await waitFor(() => cliProcesses(t.config.claudeConfigDir).length === 2, 5_000)).toBe(true);
  });
});

describe('warm processes are bounded in time', () => {
  let t: TestApp;
  const idleMs = 3000;
  beforeAll(async () => {
    t = await startApp({ env: { WARM_IDLE_MS: String(idleMs) } });
  });
  afterAll(async () => t.close());

  it('closes a process idle for WARM_IDLE_MS, and a turn then resumes the session', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const idleFrom = Date.now();
    expect(t.app.internals.runner.liveSessions()).toEqual([s.session_id]);
    expect(await waitFor(() => t.app.internals.runner.stats().warm === 0, idleMs + 10_000)).toBe(true);
    expect(Date.now() - idleFrom).toBeGreaterThanOrEqual(idleMs - 1000);
    expect(await waitFor(() => cliProcesses(t.config.claudeConfigDir).length === 0, 5_000)).toBe(true);
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(r.body.status).toBe('succeeded');
    expect(r.body.result).toMatch(/blue/);
  });
});
