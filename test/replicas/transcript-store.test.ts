/**
 * Two servers over one PostgreSQL, each with its own CLAUDE_CONFIG_DIR (no shared disk), the
 * same WORKSPACE_ROOT path: with TRANSCRIPT_STORE=database, B resumes what only A's disk saw.
 */
import fs from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { openStorage } from '../../src/storage/db.js';
import { createTranscriptStore } from '../../src/storage/transcript-store.js';
import { COST_STATE_MARK, savedCostInEntries } from '../../src/claude/cost.js';
import { call, dbEnv, DIALECT, makeDirs, startApp, type TestApp } from '../helper.js';

describe(`transcripts shared through the database (${DIALECT})`, () => {
  const apps: TestApp[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close().catch(() => {});
  });

  it.skipIf(DIALECT !== 'postgres')('replica B recalls blue from a session only replica A ran', async () => {
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
  it.skipIf(DIALECT === 'postgres')('is refused without PostgreSQL, with a clear message', () => {
    expect(() => loadConfig({ TRANSCRIPT_STORE: 'database' })).toThrow(/TRANSCRIPT_STORE=database needs DATABASE_URL/);
  });
});

describe(`the transcript store's filtered read (${DIALECT})`, () => {
  it('gives the entries containing a text, in order, and the same saved cost as the whole transcript', async () => {
    const dirs = makeDirs();
    const storage = await openStorage({ dataDir: dirs.dataDir, databaseUrl: (await dbEnv(dirs)).DATABASE_URL });
    try {
      const store = createTranscriptStore(storage.db, storage.dialect);
      const key = { projectKey: '-p', sessionId: 's1' };
      const entries = [
        { type: 'user', uuid: 'u1', message: { content: 'what does "cost-state" mean? 100% of it_' } },
        { type: 'cost-state', sessionId: 's1', totalCostUSD: 0.01 },
        { type: 'assistant', uuid: 'a1', message: { content: 'hello' } },
        { type: 'cost-state', sessionId: 'other', totalCostUSD: 9 },
        { type: 'cost-state', sessionId: 's1', totalCostUSD: 0.03 },
        { type: 'cost-state', sessionId: 's1', totalCostUSD: Number.NaN },
        { type: 'user', uuid: 'u2', message: { content: 'the end' } },
      ];
      await store.append(key, entries);
      // Another session's and another sub-path's copies are not read.
      await store.append({ projectKey: '-p', sessionId: 's2' }, [{ type: 'cost-state', sessionId: 's2', totalCostUSD: 5 }]);
      await store.append({ ...key, subpath: 'subagents/x' }, [{ type: 'cost-state', sessionId: 's1', totalCostUSD: 7 }]);

      // The mark quoted inside a message's text is escaped there, so that message is not a candidate.
      const found = await store.entriesContaining(key, COST_STATE_MARK);
      expect(found.map((e) => [e.type, e.totalCostUSD])).toEqual([
        ['cost-state', 0.01],
        ['cost-state', 9],
        ['cost-state', 0.03],
        ['cost-state', null], // NaN, stored as JSON
      ]);
      expect(savedCostInEntries(found, 's1')).toBe(0.03);
      expect(savedCostInEntries(found, 's1')).toBe(savedCostInEntries(await store.load(key), 's1'));
      // LIKE's wildcards in the text are taken literally.
      expect((await store.entriesContaining(key, '100% of it_')).map((e) => e.uuid)).toEqual(['u1']);
      expect(await store.entriesContaining(key, '1%0')).toEqual([]);
      expect(await store.entriesContaining({ projectKey: '-p', sessionId: 'none' }, COST_STATE_MARK)).toEqual([]);
    } finally {
      await storage.close();
    }
  });
});
