/**
 * Two servers over one PostgreSQL, each with its own CLAUDE_CONFIG_DIR (no shared disk), the same
 * WORKSPACE_ROOT path: with TRANSCRIPT_STORE=database, B resumes what only A's disk saw. PostgreSQL
 * only (vitest.config.ts): replicas share transcripts through it alone.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { call, dbEnv, makeDirs, startApp, type TestApp } from '../helper.js';

describe('transcripts shared through the database', () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
  });

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
});
