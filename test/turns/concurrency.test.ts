import { describe, expect, it } from 'vitest';
import { call, transcriptPrompts, useApp } from '../helper.js';

describe('one writer per session', () => {
  const t = useApp();

  it('two concurrent turns on one session: one runs, one gets 409, the transcript holds exactly the one', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const [a, b] = await Promise.all([
      call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[slow:1500]] first of two' }),
      call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[slow:1500]] second of two' }),
    ]);
    const statuses = [a.status, b.status].sort((x, y) => x - y);
    expect(statuses).toEqual([200, 409]);
    const won = a.status === 200 ? a : b;
    const lost = a.status === 200 ? b : a;
    expect(lost.body.error.code).toBe('SESSION_BUSY');
    expect(won.body.status).toBe('succeeded');

    const prompts = transcriptPrompts(s.transcript.path);
    expect(prompts).toEqual(['Remember: my favorite color is blue', won.body.prompt]);
    const turns = await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns`);
    expect(turns.body.turns.map((x: any) => x.status)).toEqual(['succeeded', 'succeeded']);
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(again.body.result).toMatch(/blue/);
  });

  it('a burst of rejects and queues on an idle session: refused ones never run, the rest run in their recorded order', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const sent = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[slow:100]] burst ${i}`, if_busy: i % 2 ? 'queue' : 'reject' }),
      ),
    );
    const ran = sent.filter((r) => r.status === 200);
    const refused = sent.filter((r) => r.status === 409);
    expect(ran.length + refused.length).toBe(8);
    expect(refused.every((r) => r.body.error.code === 'SESSION_BUSY')).toBe(true);
    // Every queued one ran; at most one reject got in (the first to reach an idle session).
    expect(ran.filter((r) => /burst \d*[13579]$/.test(r.body.prompt)).length).toBe(4);
    expect(ran.length).toBeLessThanOrEqual(5);
    expect(ran.every((r) => r.body.status === 'succeeded')).toBe(true);
    // The recorded order (turn sequence) is the order the transcript shows them in.
    const turns = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}/turns?limit=50`)).body.turns.slice(1);
    expect(turns.map((x: any) => x.status).every((x: string) => x === 'succeeded')).toBe(true);
    expect(transcriptPrompts(s.transcript.path).slice(1)).toEqual(turns.map((x: any) => x.prompt));
  });

  it('shows the running turn on the session while it runs', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', {})).body;
    expect(s.running_turn_id).toBeNull();
    const pending = call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[slow:1500]] hello' });
    let seen: string | null = null;
    for (let i = 0; i < 40 && !seen; i++) {
      await new Promise((r) => setTimeout(r, 50));
      seen = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}`)).body.running_turn_id;
    }
    const done = await pending;
    expect(seen).toBe(done.body.turn_id);
    expect((await call(t.app, 'GET', `/v1/sessions/${s.session_id}`)).body.running_turn_id).toBeNull();
  });

  it('turns on different sessions run side by side', async () => {
    const ids = await Promise.all([1, 2, 3].map(async () => (await call(t.app, 'POST', '/v1/sessions', {})).body.session_id));
    const results = await Promise.all(ids.map((id) => call(t.app, 'POST', `/v1/sessions/${id}/turns`, { prompt: '[[slow:1000]] hi' })));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    // Overlapped in time: every turn started before any of them finished (one after another, the
    // last would start only after the first had finished).
    const starts = results.map((r) => Date.parse(r.body.started_at));
    const ends = results.map((r) => Date.parse(r.body.finished_at));
    expect(Math.max(...starts)).toBeLessThan(Math.min(...ends));
  });
});
