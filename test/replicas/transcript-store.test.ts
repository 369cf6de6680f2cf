/**
 * Two servers over one PostgreSQL, each with its own CLAUDE_CONFIG_DIR (no shared disk), the
 * same WORKSPACE_ROOT path: with TRANSCRIPT_STORE=database, B resumes what only A's disk saw.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { call, dbEnv, DIALECT, makeDirs, startApp, type TestApp } from '../helper.js';

describe(`transcripts shared through the database (${DIALECT})`, () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
  });

  if (DIALECT === 'postgres') {
    it('replica B recalls blue from a session only replica A ran', async () => {
      const a = makeDirs();
      const b = makeDirs();
      const shared = await dbEnv(a);
      const env = { ...shared, TRANSCRIPT_STORE: 'database' };
      const A = await startApp({ dirs: a, env });
      apps.push(A);
      const B = await startApp({ dirs: { ...b, workspace: a.workspace }, env });
      apps.push(B);
      const s = (await call(A.app, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue' })).body;
      expect(s.turn.status).toBe('succeeded');
      // B's disk has never seen it.
      expect(fs.existsSync(s.transcript.path.replace(a.configDir, b.configDir))).toBe(false);
      const r = await call(B.app, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: 'What is my favorite color?' });
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('succeeded');
      expect(r.body.result).toMatch(/blue/);
    });
  } else {
    it('is refused without PostgreSQL, with a clear message', () => {
      expect(() => loadConfig({ TRANSCRIPT_STORE: 'database' })).toThrow(/TRANSCRIPT_STORE=database needs DATABASE_URL/);
    });
  }
});
