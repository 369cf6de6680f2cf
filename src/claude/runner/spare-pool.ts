/**
 * @module claude/runner/spare-pool
 * Prewarmed CLI processes for new sessions. Each spare is started with a session id chosen up
 * front; a new session reserves one (its id becomes the session's) and its first turn claims the
 * process instead of starting one. A reserved spare unclaimed for as long as a warm process would
 * be kept is let go; a parked spare that dies is replaced.
 */
import { randomUUID } from 'node:crypto';
import { prewarm, type Options, type SpareProcess } from '@anthropic-ai/claude-agent-sdk';

interface Spare {
  sessionId: string;
  spare: SpareProcess;
  ready: boolean;
  reservedAt: number | null;
  timer: NodeJS.Timeout | null;
}

export interface SparePool {
  /** A ready spare's session id, now reserved for a new session; null when none is ready. */
  reserve(): string | null;
  /** The session's ready spare, taken out of the pool to be claimed; any other spare of it is dropped. */
  take(sessionId: string): SpareProcess | null;
  /** Closes the session's spare, if any. */
  drop(sessionId: string): void;
  has(sessionId: string): boolean;
  /** Closes every spare and starts no more. */
  close(): void;
  stats(): { spares: number; reserved: number };
}

/** `options(sessionId)`: the host options of a spare for that session id. */
export function createSparePool(target: number, holdMs: number, options: (sessionId: string) => Options): SparePool {
  const spares = new Map<string, Spare>();
  let closing = false;

  function refill() {
    if (closing) return;
    let missing = target - [...spares.values()].filter((s) => s.reservedAt === null).length;
    for (; missing > 0; missing--) {
      const sessionId = randomUUID();
      const entry: Spare = { sessionId, spare: null as unknown as SpareProcess, ready: false, reservedAt: null, timer: null };
      spares.set(sessionId, entry);
      prewarm({ options: { ...options(sessionId), sessionId, permissionMode: 'default' } })
        .then((spare) => {
          entry.spare = spare;
          entry.ready = true;
          if (closing) spare.close();
          // A parked spare that dies is replaced.
          void spare.exited.then(() => {
            if (spares.get(sessionId) === entry) {
              spares.delete(sessionId);
              refill();
            }
          });
        })
        .catch(() => {
          spares.delete(sessionId);
          setTimeout(refill, 5_000).unref();
        });
    }
  }

  const pool: SparePool = {
    reserve() {
      if (closing) return null;
      const s = [...spares.values()].find((x) => x.ready && x.reservedAt === null);
      if (!s) return null;
      s.reservedAt = Date.now();
      // Unclaimed for as long as a warm process would be kept: let it go.
      s.timer = setTimeout(() => pool.drop(s.sessionId), holdMs);
      s.timer.unref();
      refill();
      return s.sessionId;
    },
    take(sessionId) {
      const s = spares.get(sessionId);
      if (!s) return null;
      if (!s.ready) {
        pool.drop(sessionId);
        return null;
      }
      spares.delete(sessionId);
      if (s.timer) clearTimeout(s.timer);
      return s.spare;
    },
    drop(sessionId) {
      const s = spares.get(sessionId);
      if (!s) return;
      spares.delete(sessionId);
      if (s.timer) clearTimeout(s.timer);
      if (s.ready) s.spare.close();
    },
    has: (sessionId) => spares.has(sessionId),
    close() {
      closing = true;
      for (const id of Array.from(spares.keys())) pool.drop(id);
    },
    stats() {
      const sp = [...spares.values()];
      return { spares: sp.filter((s) => s.ready && s.reservedAt === null).length, reserved: sp.filter((s) => s.reservedAt !== null).length };
    },
  };
  refill();
  return pool;
}
