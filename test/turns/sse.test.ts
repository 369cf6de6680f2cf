import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECT, call, listen, makeDirs, readSse, startApp, streamedText, waitFor, waitForTurn, type SseEvent, type TestApp } from '../helper.js';

const ids = (evs: SseEvent[]) => evs.filter((e) => e.id !== null).map((e) => e.id!);

describe('server-sent events', () => {
  const dirs = makeDirs();
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await startApp({ dirs, env: { SSE_HEARTBEAT_MS: '200' } });
    base = await listen(t.app);
  });
  afterAll(async () => t.close());

  it("a turn sent while the session's last one winds down: its log says queued before running, every time", async () => {
    // Back to back: each answer goes out before the session's actor has finished with its turn, so the
    // next turn often finds it and is taken up by it while its submission writes its `queued` event.
    // Several sessions at once, so that the steps of a submission and of an actor interleave.
    const sessions = await Promise.all(Array.from({ length: 6 }, async () => (await call(t.app, 'POST', '/v1/sessions', {})).body.session_id as string));
    const turns: [string, string][] = [];
    await Promise.all(
      sessions.map(async (sid) => {
        for (let i = 0; i < 15; i++) {
          const r = await call(t.app, 'POST', `/v1/sessions/${sid}/turns`, { prompt: `turn ${i}` });
          expect(r.body.status).toBe('succeeded');
          turns.push([sid, r.body.turn_id]);
        }
      }),
    );
    const seen: string[][] = [];
    for (const [sid, id] of turns) {
      const r = await readSse(`${base}/v1/sessions/${sid}/turns/${id}/events`);
      expect(r.ended).toBe(true);
      seen.push(r.events.filter((e) => e.event === 'turn').map((e) => e.data.status));
    }
    // Over PostgreSQL a turn is written before it runs, and 20-27 of these 90 went by the queue (the
    // interleaving this test is about; without the wait for the `queued` event it failed every run).
    // One process over SQLite hands an idle session's turn to its CLI first: none is queued there.
    if (DIALECT === 'postgres') expect(seen.filter((x) => x.length === 3).length).toBeGreaterThan(0);
    for (const states of seen)
      expect([
        ['running', 'succeeded'],
        ['queued', 'running', 'succeeded'],
      ]).toContainEqual(states);
  });

  it('streams a turn in order: turn (queued, running), messages with the text, turn (succeeded), done', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const r = await readSse(`${base}/v1/sessions/${s.session_id}/turns`, { method: 'POST', body: { prompt: 'What is my favorite color?' } });
    expect(r.status).toBe(200);
    expect(r.ended).toBe(true);
    const evs = r.events.filter((e) => e.id !== null);
    const kinds = evs.map((e) => e.event);
    // The turn's states in order. An idle session usually runs it at once (its first event then
    // says running); when the previous turn's actor is still winding down, it is queued first.
    expect(kinds[0]).toBe('turn');
    const states = evs.filter((e) => e.event === 'turn').map((e) => e.data.status);
    expect([
      ['running', 'succeeded'],
      ['queued', 'running', 'succeeded'],
    ]).toContainEqual(states);
    expect(kinds.indexOf('message')).toBeGreaterThan(0);
    expect(kinds.slice(-2)).toEqual(['turn', 'done']);
    expect(evs[evs.length - 1]!.data.status).toBe('succeeded');
    expect(kinds.filter((k) => k === 'message').length).toBeGreaterThan(3);
    const idList = ids(evs);
    expect(idList).toEqual([...idList].sort((a, b) => a - b));
    expect(new Set(idList).size).toBe(idList.length);
    expect(streamedText(evs)).toBe('Your favorite color is blue.');
    expect(evs.find((e) => e.event === 'message' && e.data.type === 'result')?.data.result).toBe('Your favorite color is blue.');
  });

  it('replays after Last-Event-ID mid-turn: nothing missing, nothing doubled', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const turn = (
      await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, {
        prompt: '[[slow:1500]] tell me a somewhat longer story about colors and their names',
      })
    ).body;
    const url = `${base}/v1/sessions/${s.session_id}/turns/${turn.turn_id}/events`;
    const part = await readSse(url, { until: (evs) => evs.filter((e) => e.event === 'message').length >= 3 });
    const seen = part.events.filter((e) => e.id !== null);
    expect(seen.some((e) => e.event === 'done')).toBe(false);
    const last = seen[seen.length - 1]!.id!;
    const rest = await readSse(url, { headers: { 'last-event-id': String(last) } });
    expect(rest.ended).toBe(true);
    const restEvs = rest.events.filter((e) => e.id !== null);
    expect(restEvs[0]!.id!).toBeGreaterThan(last);
    const whole = await readSse(`${url}?after=0`);
    const joined = [...seen, ...restEvs];
    expect(ids(joined)).toEqual(ids(whole.events));
    expect(streamedText(joined)).toBe(streamedText(whole.events));
    expect(joined[joined.length - 1]!.event).toBe('done');
    // The turn has ended. A client that has its done (an EventSource reconnecting sends that id)
    // gets 204, which stops an EventSource; one that has not gets the rest, and the stream ends.
    const doneId = joined[joined.length - 1]!.id!;
    const t0 = Date.now();
    for (const again of [
      await readSse(url, { headers: { 'last-event-id': String(doneId) }, ms: 5_000 }),
      await readSse(`${url}?after=${doneId}`, { ms: 5_000 }),
    ]) {
      expect(again.status).toBe(204);
      expect(again.events.filter((e) => e.id !== null)).toEqual([]);
    }
    expect(Date.now() - t0).toBeLessThan(4_000);
    const lastOne = await readSse(url, { headers: { 'last-event-id': String(doneId - 1) }, ms: 5_000 });
    expect(lastOne).toMatchObject({ status: 200, ended: true });
    expect(lastOne.events.filter((e) => e.id !== null).map((e) => [e.id, e.event])).toEqual([[doneId, 'done']]);
  });

  it('a subscriber that joins late sees everything the first one saw', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const url = `${base}/v1/sessions/${s.session_id}/events`;
    const first = readSse(url, { until: (evs) => evs.some((e) => e.event === 'done') });
    await new Promise((r) => setTimeout(r, 100));
    const turn = (await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns?wait=false`, { prompt: '[[slow:800]] hello there, how are you today' })).body;
    await waitForTurn(t.app, s.session_id, turn.turn_id, 'running');
    const late = readSse(url, { until: (evs) => evs.some((e) => e.event === 'done') });
    const [a, b] = await Promise.all([first, late]);
    const strip = (evs: SseEvent[]) => evs.filter((e) => e.id !== null).map((e) => [e.id, e.event, JSON.stringify(e.data)]);
    expect(strip(b.events)).toEqual(strip(a.events));
    expect(strip(a.events).length).toBeGreaterThan(5);
  });

  it('streams when the client accepts text/event-stream, and answers JSON when it refuses it (q=0)', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const url = `${base}/v1/sessions/${s.session_id}/turns`;
    const streamed = await readSse(url, { method: 'POST', body: { prompt: 'hello' }, headers: { accept: 'application/json;q=0.9, TEXT/Event-Stream;q=0.5' } });
    expect(streamed.events.filter((e) => e.id !== null).at(-1)?.event).toBe('done');
    const json = await readSse(url, { method: 'POST', body: { prompt: 'hello again' }, headers: { accept: 'text/event-stream;q=0, application/json' } });
    expect(json.status).toBe(200);
    expect(json.events).toEqual([{ id: null, event: 'http', data: expect.objectContaining({ status: 'succeeded', prompt: 'hello again' }) }]);
  });

  it('sends a heartbeat comment while nothing happens', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const r = await readSse(`${base}/v1/sessions/${s.session_id}/events`, { until: (evs) => evs.some((e) => e.comment === 'heartbeat'), ms: 3_000 });
    expect(r.events.some((e) => e.comment === 'heartbeat')).toBe(true);
  });

  it('a client that disconnects does not stop the turn', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    const r = await readSse(`${base}/v1/sessions/${s.session_id}/turns`, {
      method: 'POST',
      body: { prompt: '[[slow:500]] keep going without me' },
      until: (evs) => evs.some((e) => e.event === 'turn' && e.data.status === 'running'),
    });
    const turnId = r.events.find((e) => e.event === 'turn')!.data.turn_id;
    const fin = await waitFor(async () => {
      const x = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns/${turnId}`)).body;
      return x.status === 'succeeded' ? x : null;
    }, 15_000);
    expect(fin?.result).toMatch(/keep going without me/);
  });

  it('replays the event log after a restart of the server, then follows live', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const before = await readSse(`${base}/v1/sessions/${s.session_id}/events`, { until: (evs) => evs.some((e) => e.event === 'done') });
    await t.close();
    t = await startApp({ dirs, env: { SSE_HEARTBEAT_MS: '200' } });
    base = await listen(t.app);
    const url = `${base}/v1/sessions/${s.session_id}/events`;
    const follow = readSse(url, { until: (evs) => evs.filter((e) => e.event === 'done').length >= 2 });
    await new Promise((r) => setTimeout(r, 200));
    const next = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(next.body.result).toMatch(/blue/);
    const after = (await follow).events.filter((e) => e.id !== null);
    const old = before.events.filter((e) => e.id !== null);
    expect(after.slice(0, old.length).map((e) => [e.id, e.event])).toEqual(old.map((e) => [e.id, e.event]));
    expect(after[old.length]!.id).toBe(old[old.length - 1]!.id! + 1);
    expect(streamedText(after.slice(old.length))).toBe('Your favorite color is blue.');
  });
});
