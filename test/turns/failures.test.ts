/**
 * A turn whose row the database refuses: the client gets a clear 500, the CLI is stopped, the
 * session's event stream sees the turn end, and the session stays usable.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, DIALECT, listen, readSse, startApp, waitFor, type TestApp } from '../helper.js';

describe('a turn the database refuses to record', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
    const db = t.app.internals.storage.db;
    if (DIALECT === 'postgres') {
      await sql`create function refuse_boom() returns trigger language plpgsql as $$ begin if new.prompt like '%boom%' then raise exception 'refused by the test'; end if; return new; end $$`.execute(
        db,
      );
      await sql`create trigger refuse_boom before insert on turns for each row execute function refuse_boom()`.execute(db);
    } else {
      await sql`create trigger refuse_boom before insert on turns when new.prompt like '%boom%' begin select raise(abort, 'refused by the test'); end`.execute(
        db,
      );
    }
  });
  afterAll(async () => t.close());

  it('answers 500, stops the CLI, ends the turn on the event stream, and the session goes on', async () => {
    const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
    expect(s.turn.status).toBe('succeeded');
    const r = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: '[[slow:20000]] boom' });
    expect(r.status).toBe(500);
    expect(r.body.error.code).toBe('INTERNAL');
    // Nothing of it is left running: no row, no busy process, and what was announced has ended.
    const idle = await waitFor(async () => {
      const got = (await call(t.app, 'GET', `/v1/sessions/${s.session_id}`)).body;
      return got.running_turn_id === null && t.app.internals.runner.stats().busy === 0;
    }, 10_000);
    expect(idle).toBe(true);
    // Every turn the session's stream announced as running also ended there.
    const base = await listen(t.app);
    const { events } = await readSse(`${base}/v1/sessions/${s.session_id}/events?after=0`, { ms: 1_500 });
    const started = events.filter((e) => e.event === 'turn' && e.data.status === 'running').map((e) => e.data.turn_id);
    const ended = new Set(events.filter((e) => e.event === 'done').map((e) => e.data.turn_id));
    expect(started.length).toBeGreaterThanOrEqual(1);
    for (const id of started) expect(ended.has(id)).toBe(true);
    const again = await call(t.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
    expect(again.status).toBe(200);
    expect(again.body.result).toMatch(/blue/);
  });
});
