/**
 * @module turns/engine/bounds
 * The turns this replica counts against its bounds: queued here (MAX_QUEUED_TURNS) and running
 * or waiting here, per user (USER_MAX_CONCURRENT_TURNS). Beyond either a submission is refused
 * with 429. A turn queued here for a session another replica holds is counted by the replica
 * that runs it, once it runs. (How many turns *run* at once is admission's job: `admission.ts`.)
 */
import { AppError } from '../../errors.js';

export interface TurnBounds {
  /** Counts a turn (once): queued here, or running/waiting here. */
  track(turnId: string, userId: string, queued: boolean, sessionId: string): void;
  /** A queued turn starts running here (counted if it was not). */
  started(turnId: string, userId: string, sessionId: string): void;
  /** The turn ended or went elsewhere: it no longer counts. */
  untrack(turnId: string): void;
  /** The turns counted now. */
  counted(): string[];
  /** Whether turns of the session are queued here. */
  hasQueued(sessionId: string): boolean;
  /** Turns queued here. */
  readonly queued: number;
  /** Refuses (429) a user at the per-user cap. */
  checkUser(userId: string): void;
  /**
   * Writes a turn that will wait, holding a place in the line while it is written, so that
   * concurrent submissions cannot overfill it; refuses (429) a full line unless `exempt`.
   */
  enqueue<T>(exempt: boolean, write: () => Promise<T>): Promise<T>;
}

export function createTurnBounds(maxQueued: number, userMax: number | undefined): TurnBounds {
  const tracked = new Map<string, { userId: string; sessionId: string; queued: boolean }>();
  const activeByUser = new Map<string, number>();
  /** Turns queued here, by session (with one process, every queued turn of the database). */
  const queuedBySession = new Map<string, number>();
  let queued = 0;
  /** Turns being written to wait (not yet counted in `queued`). */
  let enqueuing = 0;

  const add = (map: Map<string, number>, key: string, n: number) => {
    const v = (map.get(key) ?? 0) + n;
    if (v <= 0) map.delete(key);
    else map.set(key, v);
  };
  const countQueued = (sessionId: string, n: number) => {
    queued += n;
    add(queuedBySession, sessionId, n);
  };

  const bounds: TurnBounds = {
    track(turnId, userId, isQueued, sessionId) {
      if (tracked.has(turnId)) return;
      tracked.set(turnId, { userId, sessionId, queued: isQueued });
      add(activeByUser, userId, 1);
      if (isQueued) countQueued(sessionId, 1);
    },
    started(turnId, userId, sessionId) {
      const t = tracked.get(turnId);
      if (!t) return bounds.track(turnId, userId, false, sessionId);
      if (t.queued) {
        t.queued = false;
        countQueued(t.sessionId, -1);
      }
    },
    untrack(turnId) {
      const t = tracked.get(turnId);
      if (!t) return;
      tracked.delete(turnId);
      if (t.queued) countQueued(t.sessionId, -1);
      add(activeByUser, t.userId, -1);
    },
    counted: () => [...tracked.keys()],
    hasQueued: (sessionId) => queuedBySession.has(sessionId),
    get queued() {
      return queued;
    },
    checkUser(userId) {
      if (userMax !== undefined && (activeByUser.get(userId) ?? 0) >= userMax) {
        throw new AppError('CAPACITY_EXCEEDED', `user ${userId} already has ${userMax} turns running or waiting`, { retryAfter: 5 });
      }
    },
    async enqueue(exempt, write) {
      if (!exempt && queued + enqueuing >= maxQueued) {
        throw new AppError('CAPACITY_EXCEEDED', `${queued} turns are already waiting; try again shortly`, { retryAfter: 5 });
      }
      enqueuing++;
      try {
        return await write();
      } finally {
        enqueuing--;
      }
    },
  };
  return bounds;
}
