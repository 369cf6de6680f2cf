/**
 * @module turns/engine/waiters
 * Who waits for a turn to end (a blocking POST, a purge): answered when this process records
 * the end, when another replica says it ended, or by a look at the row now and then (a notice
 * may be lost).
 */
import type { TurnRepository, TurnRow } from '../../storage/turns-repo.js';
import { ENDED } from '../../schemas.js';
import type { Cluster } from '../../cluster/cluster.js';

export interface TurnWaiters {
  /** Resolves with the turn's row once it has ended. */
  waitFor(turnId: string): Promise<TurnRow>;
  /** The turn ended: its waiters here and on the other replicas are told. */
  ended(row: TurnRow): void;
  /** Answers this process's waiters of an ended turn (the others are told by whoever ended it). */
  settle(row: TurnRow): void;
  /** Reads a turn and answers its waiters if it has ended. */
  recheck(turnId: string): Promise<void>;
  /** Every waited-for turn looks again (notices may have been lost). */
  recheckAll(): void;
  has(turnId: string): boolean;
}

export function createTurnWaiters(turns: TurnRepository, cluster: Cluster): TurnWaiters {
  const waiters = new Map<string, Array<(t: TurnRow) => void>>();

  const w: TurnWaiters = {
    waitFor(turnId) {
      return new Promise<TurnRow>((resolve, reject) => {
        let poll: NodeJS.Timeout | undefined;
        const list = waiters.get(turnId) ?? [];
        list.push((row) => {
          clearInterval(poll);
          resolve(row);
        });
        waiters.set(turnId, list);
        // It may have finished before we started waiting.
        w.recheck(turnId).catch((err: unknown) => {
          clearInterval(poll);
          reject(err instanceof Error ? err : new Error(String(err)));
        });
        // Run by another replica: its end is notified; a look now and then covers a lost notice.
        if (cluster.shared) {
          poll = setInterval(() => void w.recheck(turnId).catch(() => {}), 1_000);
          poll.unref();
        }
      });
    },
    settle(row) {
      const list = waiters.get(row.turn_id);
      waiters.delete(row.turn_id);
      for (const f of list ?? []) f(row);
    },
    ended(row) {
      w.settle(row);
      cluster.publish({ k: 'finished', s: row.session_id, t: row.turn_id });
    },
    async recheck(turnId) {
      const row = await turns.get(turnId);
      if (row && ENDED.includes(row.status)) w.settle(row);
    },
    recheckAll() {
      for (const id of waiters.keys()) void w.recheck(id).catch(() => {});
    },
    has: (turnId) => waiters.has(turnId),
  };
  return w;
}
