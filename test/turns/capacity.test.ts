import { describe, expect, it } from 'vitest';
import { call, offlineModel, waitFor, waitForTurn, useApp } from '../helper.js';

describe('admission control', () => {
  const t = useApp({ env: { MAX_CONCURRENT_TURNS: '2' } });

  it('with MAX_CONCURRENT_TURNS=2, 6 slow turns on 6 sessions: never more than 2 running, all 6 finish', async () => {
    const model = await offlineModel();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await call(t.app, 'POST', '/v1/sessions', {})).body.session_id);
    model.resetPeak();
    let peakBusy = 0;
    const sampler = setInterval(() => (peakBusy = Math.max(peakBusy, t.app.internals.runner.stats().busy)), 10);
    const t0 = Date.now();
    const results = await Promise.all(ids.map((id) => call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: '[[slow:1200]] take a while' })));
    clearInterval(sampler);
    expect(results.map((r) => r.body.status)).toEqual(Array(6).fill('succeeded'));
    // The model sees at most 2 CLI processes asking at once: only 2 turns ran at a time.
    expect(model.peakInFlight).toBe(2);
    expect(peakBusy).toBeLessThanOrEqual(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3 * 1200);
  });
});

describe('a bounded waiting line', () => {
  const t = useApp({ env: { MAX_CONCURRENT_TURNS: '1', MAX_QUEUED_TURNS: '1' } });

  it('past the line, a turn gets 429 with Retry-After and nothing is written', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(t.app, 'POST', '/v1/sessions', {})).body.session_id);
    const a = await call(t.app, 'POST', `/v1/sessions/${ids[0]}/turns?wait=false`, { prompt: '[[slow:1000]] a' });
    await waitForTurn(t.app, ids[0]!, a.body.turn_id, 'running');
    const b = await call(t.app, 'POST', `/v1/sessions/${ids[1]}/turns?wait=false`, { prompt: 'b' });
    expect(b.status).toBe(202);
    const c = await call(t.app, 'POST', `/v1/sessions/${ids[2]}/turns?wait=false`, { prompt: 'c' });
    expect(c.status).toBe(429);
    expect(c.body.error.code).toBe('CAPACITY_EXCEEDED');
    expect(Number(c.headers['retry-after'])).toBeGreaterThan(0);
    expect((await call(t.app, 'GET', `/v1/sessions/${ids[2]}/turns`)).body.turns).toEqual([]);
    // A new session whose first turn is refused is not left behind.
    const before = (await call(t.app, 'GET', '/v1/sessions')).body.sessions.length;
    const created = await call(t.app, 'POST', '/v1/sessions', { prompt: 'd' });
    expect([created.status, created.body.error.code]).toEqual([429, 'CAPACITY_EXCEEDED']);
    expect((await call(t.app, 'GET', '/v1/sessions')).body.sessions.length).toBe(before);
    const fb = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${ids[1]}/turns/${b.body.turn_id}`)).body;
      return x.status === 'succeeded' ? x : null;
    }, 15_000);
    expect(fb).toBeTruthy();
    const again = await call(t.app, 'POST', `/v1/sessions/${ids[2]}/turns`, { prompt: 'c' });
    expect(again.body.status).toBe('succeeded');
  });
});

describe('no waiting line (MAX_QUEUED_TURNS=0)', () => {
  const t = useApp({ env: { MAX_CONCURRENT_TURNS: '1', MAX_QUEUED_TURNS: '0' } });

  it('a turn that can start now runs; one that would have to wait gets 429 and nothing is written', async () => {
    const first = await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' });
    expect([first.status, first.body.turn?.status]).toEqual([201, 'succeeded']);
    const other = (await call(t.app, 'POST', '/v1/sessions', {})).body.session_id;
    const a = await call(t.app, 'POST', `/v1/sessions/${first.body.session_id}/turns?wait=false`, { prompt: '[[slow:1500]] What is my favorite color?' });
    expect(a.status).toBe(202);
    await waitForTurn(t.app, first.body.session_id, a.body.turn_id, 'running');
    // The one slot is taken: waiting for it, or behind the running turn of the same session, is refused.
    for (const [sid, body] of [
      [other, { prompt: 'b' }],
      [first.body.session_id, { prompt: 'c', if_busy: 'queue' }],
    ] as const) {
      const r = await call(t.app, 'POST', `/v1/sessions/${sid}/turns?wait=false`, body);
      expect([r.status, r.body.error?.code]).toEqual([429, 'CAPACITY_EXCEEDED']);
      expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    }
    expect((await call(t.app, 'GET', `/v1/sessions/${other}/turns`)).body.turns).toEqual([]);
    expect((await call(t.app, 'GET', `/v1/sessions/${first.body.session_id}/turns`)).body.turns).toHaveLength(2);
    const done = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${first.body.session_id}/turns/${a.body.turn_id}`)).body;
      return x.status === 'succeeded' ? x : null;
    }, 15_000);
    expect(done?.result).toMatch(/blue/);
    // Free again: the next turn runs.
    expect((await call(t.app, 'POST', `/v1/sessions/${other}/turns`, { prompt: 'b' })).body.status).toBe('succeeded');
  });

  it('turns sent one right after another on one session all run (the last turn winding down is no line)', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body.session_id;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await call(t.app, 'POST', `/v1/sessions/${s}/turns`, { prompt: `turn ${i}` })).status);
    expect(statuses).toEqual(Array(12).fill(200));
  });
});
