import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, cliProcesses, listen, readSse, startApp, transcriptPrompts, waitFor, waitForTurn, type TestApp, useApp } from '../helper.js';

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

  it('a page reads the newest messages first (order=desc) and follows from the running turn (?tail=true), not the whole log', async () => {
    const s = await newSession();
    for (let i = 1; i <= 3; i++)
      expect((await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[say:answer ${i}]] turn ${i}` })).status).toBe(200);
    const asc = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?limit=500`)).body.messages;
    expect(asc).toHaveLength(8);
    const p1 = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?order=desc&limit=3`)).body;
    expect(p1.order).toBe('desc');
    expect(p1.messages.map((m: any) => m.uuid)).toEqual(
      asc
        .slice(5)
        .reverse()
        .map((m: any) => m.uuid),
    );
    expect(p1.next_offset).toBe(3);
    const p3 = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?order=desc&limit=3&offset=6`)).body;
    expect(p3.messages.map((m: any) => m.uuid)).toEqual(
      asc
        .slice(0, 2)
        .reverse()
        .map((m: any) => m.uuid),
    );
    expect(p3.next_offset).toBe(null);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?order=desc&offset=8`)).body.messages).toEqual([]);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}/messages?order=newest`)).status).toBe(400);
    // Turns too (a page shows each turn's cost and time from the newest).
    const t1 = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns?order=desc&limit=2`)).body;
    expect(t1.turns.map((x: any) => x.prompt)).toEqual(['[[say:answer 3]] turn 3', '[[say:answer 2]] turn 2']);
    const t2 = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns?order=desc&limit=2&cursor=${t1.next_cursor}`)).body;
    expect(t2.turns.map((x: any) => x.prompt)).toEqual(['[[say:answer 1]] turn 1', 'Remember: my favorite color is blue']);
    expect(t2.next_cursor).toBe(null);

    const base = await listen(t.app);
    const url = `${base}/v1/sessions/${s.session_id}/events`;
    const events = async (...args: Parameters<typeof readSse>) => (await readSse(...args)).events.filter((e) => e.event);
    const before = await events(`${url}?after=0`, { ms: 800 });
    const lastBefore = Math.max(...before.map((e) => Number(e.id)));
    // Idle: nothing is replayed; what happens next is.
    const idle = events(`${url}?tail=true`, { until: (evs) => evs.some((e) => e.event === 'done') });
    await new Promise((r) => setTimeout(r, 300));
    const next = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] [[say:the fourth]] turn 4' });
    const got = await idle;
    expect(Number(got[0]!.id)).toBe(lastBefore + 1);
    expect([got[0]!.event, got[0]!.data.turn_id]).toEqual(['turn', next.body.turn_id]);
    expect(got.at(-1)!.data.turn_id).toBe(next.body.turn_id);
    // Running: the running turn from its first event (and nothing before it).
    const run = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] [[say:the fifth]] turn 5' });
    await waitForTurn(t.app, s.session_id, run.body.turn_id, 'running');
    const mid = await events(`${url}?tail=true`, { until: (evs) => evs.some((e) => e.event === 'done') });
    expect([mid[0]!.event, mid[0]!.data.turn_id]).toEqual(['turn', run.body.turn_id]);
    expect(mid.at(-1)!.data.turn_id).toBe(run.body.turn_id);
    const whole = await events(`${url}?after=0`, { until: (evs) => evs.some((e) => e.event === 'done' && e.data.turn_id === run.body.turn_id) });
    expect(mid.map((e) => e.id)).toEqual(whole.filter((e) => Number(e.id) >= Number(mid[0]!.id)).map((e) => e.id));
    expect(Number(mid[0]!.id)).toBeGreaterThan(Number(got.at(-1)!.id));
    // A turn that waited in the queue is replayed from when it started, not with the turn that ran while it waited.
    const a = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1200]] [[say:first]] A' });
    const b = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:1200]] [[say:second]] B', if_busy: 'queue' });
    expect([a.status, b.status, b.body.status]).toEqual([202, 202, 'queued']);
    await waitForTurn(t.app, s.session_id, b.body.turn_id, 'running');
    const tailB = await events(`${url}?tail=true`, { until: (evs) => evs.some((e) => e.event === 'done') });
    expect([tailB[0]!.event, tailB[0]!.data.turn_id, tailB[0]!.data.status]).toEqual(['turn', b.body.turn_id, 'running']);
    const told = tailB.filter((e) => e.event === 'turn' || e.event === 'done').map((e) => e.data.turn_id);
    expect(told.length).toBeGreaterThanOrEqual(2);
    expect(new Set(told)).toEqual(new Set([b.body.turn_id]));
    // A position given wins over tail.
    const from = await events(`${url}?tail=true`, { headers: { 'last-event-id': '0' }, ms: 800 });
    expect(from.length).toBeGreaterThan(whole.length);
    expect(from.slice(0, whole.length).map((e) => e.id)).toEqual(whole.map((e) => e.id));
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
