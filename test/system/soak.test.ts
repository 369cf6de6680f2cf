/**
 * The short soak (the bench runs the long one: `npm run bench -- soak`): 500 operations, mostly
 * warm turns with dropped streams, interrupts, approvals and deletes among them, against the real
 * server process. A leak check on counts, not times: no turn lost, and what the server holds
 * (open descriptors, CLI processes, its temporary folder) stays flat over the second half; after
 * it stops, no process of it is left.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSoak, sizeOf } from '../../scripts/soak.js';
import { cliProcesses, exited, folderEnv, makeDirs, startServer, waitFor } from '../helper.js';

const SESSIONS = 12;

// Runs on one dialect (vitest.config.ts): counts of this process's own resources do not depend on the storage.
describe('soak (short): 500 mixed operations', () => {
  it('loses no turn, holds no more descriptors, processes or temporary files at the end than halfway, leaves no process', async () => {
    const dirs = makeDirs();
    const srv = await startServer({
      ...(await folderEnv(dirs)),
      MAX_WARM_SESSIONS: String(SESSIONS),
      PREWARM_SPARES: '1',
      RATE_LIMIT_PER_MINUTE: '1000000',
    });
    const pid = srv.child.pid!;
    const samples: Array<{ done: number; fds: number; clis: number; tmp: number }> = [];
    try {
      const result = await runSoak(srv.base, {
        turns: 500,
        sessions: SESSIONS,
        clients: 4,
        mix: { stream: 0.03, interrupt: 0.03, approval: 0.015, delete: 0.015 },
        onProgress: async (done) => {
          samples.push({
            done,
            fds: fs.readdirSync(`/proc/${pid}/fd`).length,
            clis: cliProcesses(dirs.configDir).length,
            // Walked folder by folder: sockets come and go while it counts.
            tmp: sizeOf(path.join(dirs.dataDir, 'tmp')).entries,
          });
        },
      });
      expect(result.problems).toEqual([]);
      expect(result.lost).toBe(0);
      expect(result.turns).toBe(500);
      // Every kind of operation ran.
      expect(Object.keys(result.byKind).sort()).toEqual(['approval', 'delete', 'dropped stream', 'interrupt', 'turn']);
      expect(samples).toHaveLength(11);
      const half = samples[5]!;
      const end = samples[10]!;
      // A warm process per session at most, and the spare.
      for (const s of samples) expect(s.clis).toBeLessThanOrEqual(SESSIONS + 1);
      expect(end.fds).toBeLessThanOrEqual(half.fds + 3);
      // One session's folder (a new session replacing a deleted one) is the most it may differ by.
      expect(end.tmp).toBeLessThanOrEqual(half.tmp + 15);
    } finally {
      srv.child.kill('SIGTERM');
      await exited(srv.child);
    }
    expect(await waitFor(() => cliProcesses(dirs.configDir, { tree: true }).length === 0, 5_000)).toBe(true);
  }, 300_000);
});
