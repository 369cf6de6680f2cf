/**
 * The transcript store's own reads, on each dialect's database (replicas sharing transcripts through it:
 * shared-transcripts.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/db.js';
import { createTranscriptStore } from '../../src/storage/transcript-store.js';
import { COST_STATE_MARK, savedCostInEntries } from '../../src/claude/cost.js';
import { dbEnv, makeDirs } from '../helper.js';

describe("the transcript store's filtered read", () => {
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
