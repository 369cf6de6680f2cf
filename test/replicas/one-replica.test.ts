/**
 * SQLite's side of the replica suites (which need PostgreSQL and run only there: vitest.config.ts):
 * one process runs every session without leases, and the transcript store is refused without PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.js';
import { call, startApp } from '../helper.js';

describe('one replica over SQLite', () => {
  it('with SQLite the one process runs every session: no lease is written', async () => {
    const t = await startApp();
    try {
      const s = (await call(t.app, 'POST', '/v1/sessions', { prompt: 'hello' })).body;
      expect(s.turn.status).toBe('succeeded');
      expect((await call(t.app, 'GET', '/health')).body.replica).toMatchObject({ shared: false, listening: true, leases: 0 });
      const n = await sql<{ n: number }>`select count(*) as n from session_leases`.execute(t.app.internals.storage.db);
      expect(Number(n.rows[0]!.n)).toBe(0);
    } finally {
      await t.close();
    }
  });

  it('refuses TRANSCRIPT_STORE=database without PostgreSQL, with a clear message', () => {
    expect(() => loadConfig({ TRANSCRIPT_STORE: 'database' })).toThrow(/TRANSCRIPT_STORE=database needs DATABASE_URL/);
  });
});
