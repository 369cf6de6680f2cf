import { afterAll, describe, expect, it } from 'vitest';
import { savedCostInEntries, savedCostInFile } from '../../src/claude/cost.js';
import { call, DIALECT, makeDirs, startApp, waitFor, type TestApp } from '../helper.js';

// On PostgreSQL the transcripts are mirrored into the database: the saved total is read from there.
const store: Record<string, string> = DIALECT === 'postgres' ? { TRANSCRIPT_STORE: 'database' } : {};

/** The running total the session's CLI processes saved when they ended: in the transcript, or with the store in the database. */
async function savedTotal(t: TestApp, s: { session_id: string; transcript: { path: string } }): Promise<number | null> {
  if (DIALECT !== 'postgres') return savedCostInFile(s.transcript.path, s.session_id);
  const rows = await t.app.internals.storage.db
    .selectFrom('transcript_entries')
    .select('entry')
    .where('session_id', '=', s.session_id)
    .where('subpath', '=', '')
    .orderBy('seq')
    .execute();
  return savedCostInEntries(
    rows.map((r) => JSON.parse(r.entry)),
    s.session_id,
  );
}

/** Ends the session's process and waits until the total it saves on its way out is the sum of the turns' costs. */
async function expectSavedSum(t: TestApp, s: { session_id: string; transcript: { path: string } }, costs: number[]) {
  t.app.internals.runner.discardWarm(s.session_id);
  const sum = Math.round(costs.reduce((a, b) => a + b, 0) * 1e9) / 1e9;
  let last: number | null = null;
  const same = await waitFor(
    async () => {
      last = await savedTotal(t, s);
      return last !== null && Math.abs(last - sum) < 1e-9;
    },
    15_000,
    100,
  );
  expect(last, `saved ${last}, sum of the turns ${sum}`).toBeCloseTo(sum, 9);
  expect(same).toBe(true);
}

// The CLI reports a running cost total (per process, and a resumed session starts from the total
// its transcript saved). A turn's cost_usd must be that turn's own, and the session's total the
// sum of its turns: not a sum of running totals. The CLI's own total, carried from process to
// process through the transcript, ends at exactly that sum.
describe('cost of a turn', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
  });

  it('is each turn’s own, in a warm process and in resumed ones (after a restart, and with no warm process)', async () => {
    const dirs = makeDirs();
    const first = await startApp({ dirs, env: store });
    apps.push(first);
    const s = (await call(first.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const costs: number[] = [];
    const turn = async (t: TestApp, body: Record<string, unknown> = {}) => {
      const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', ...body });
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('succeeded');
      expect(r.body.result).toMatch(/blue/);
      costs.push(r.body.cost_usd);
    };
    const firstTurn = (await call(first.app, 'GET', `/v1/sessions/${s.session_id}/turns`)).body.turns[0];
    expect(firstTurn.status).toBe('succeeded');
    costs.push(firstTurn.cost_usd);
    // Warm: the same process answers; its running total grows, each turn's cost does not.
    for (let i = 0; i < 3; i++) await turn(first);
    // Its process ends (saving its total) before the server stops: a CLI still running at a shutdown
    // may be ended before it saves, and the next process then starts from the older total.
    await expectSavedSum(first, s, costs);
    await first.close();
    apps.pop();
    // A new server on the same folders, keeping no process warm: each turn resumes the session in
    // a new process, which starts from the total the previous one saved.
    const second = await startApp({ dirs, env: { ...store, WARM_IDLE_MS: '0' } });
    apps.push(second);
    await turn(second);
    await turn(second);

    expect(costs).toHaveLength(6);
    for (const c of costs) expect(c).toBeGreaterThan(0);
    // Every turn asks the same small question with the history growing by a few tokens: its cost
    // stays near the first one's (a running total would reach ~6x by the last turn; a new process's
    // first turn sends the CLI's notes on the sandbox again, up to ~2.3x here). The exact check is
    // the sum below.
    for (const c of costs) expect(c).toBeLessThan(costs[0]! * 3);
    const session = (await call(second.app, 'GET', `/v1/sessions/${s.session_id}`)).body;
    expect(session.turn_count).toBe(6);
    expect(session.total_cost_usd).toBeCloseTo(
      costs.reduce((a, b) => a + b, 0),
      9,
    );
    // The CLI's own running total, saved when its last process ends, is the sum of the turns' costs.
    await expectSavedSum(second, s, costs);
  });

  it('is each turn’s own when the session’s process was closed for another session (least recently used)', async () => {
    // One warm process at most: each turn of one session closes the other's process, whose exit
    // saves its total; the next resume must start from that total, not from an older one.
    const t = await startApp({ env: { ...store, MAX_WARM_SESSIONS: '1', MAX_CONCURRENT_TURNS: '1' } });
    apps.push(t);
    const a = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const b = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    const costs = new Map<string, number[]>([
      [a.session_id, [a.turn.cost_usd]],
      [b.session_id, [b.turn.cost_usd]],
    ]);
    // Both at once: one waits for the single slot, and starts the moment the other ends, while
    // the other's end is closing its own old process.
    for (let i = 0; i < 3; i++) {
      const rs = await Promise.all(
        [a, b].map((s) => call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?', if_busy: 'queue' })),
      );
      for (const r of rs) {
        expect(r.body.status).toBe('succeeded');
        costs.get(r.body.session_id)!.push(r.body.cost_usd);
      }
    }
    for (const s of [a, b]) {
      const own = costs.get(s.session_id)!;
      for (const c of own) expect(c).toBeGreaterThan(0);
      for (const c of own) expect(c).toBeLessThan(own[0]! * 3);
      await expectSavedSum(t, s, own);
    }
  });
});
