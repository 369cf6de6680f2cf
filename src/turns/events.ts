/**
 * @module turns/events
 * The event log of each session: every event is numbered (the session's sequence), stored,
 * then fanned out to live subscribers. Stored before it is announced, so a subscriber that
 * replays from the database and then follows live never misses one; a gap seen live is
 * filled from the database.
 */
import { EventEmitter } from 'node:events';
import type { EventRepository, EventRow } from '../storage/events-repo.js';
import { isUniqueViolation } from '../storage/db.js';

export type EventType = 'turn' | 'message' | 'permission_request' | 'permission_resolved' | 'error' | 'done';

export interface SessionEvent {
  seq: number;
  session_id: string;
  turn_id: string | null;
  type: EventType;
  data: unknown;
  created_at: number;
}

export interface EventLog {
  /** Stores an event with the session's next number and announces it. */
  append(sessionId: string, turnId: string | null, type: EventType, data: unknown): Promise<SessionEvent>;
  /** Stored events after `afterSeq` (of one turn, when given), oldest first. */
  after(sessionId: string, afterSeq: number, opts?: { turnId?: string | undefined; limit?: number }): Promise<SessionEvent[]>;
  /** Live events of a session; returns the unsubscribe function. */
  subscribe(sessionId: string, fn: (e: SessionEvent) => void): () => void;
  /** Number of live subscriptions. */
  readonly subscribers: number;
}

const toEvent = (r: EventRow): SessionEvent => ({
  seq: Number(r.seq),
  session_id: r.session_id,
  turn_id: r.turn_id,
  type: r.type as EventType,
  data: JSON.parse(r.data),
  created_at: Number(r.created_at),
});

export function createEventLog(repo: EventRepository): EventLog {
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  const next = new Map<string, number>();
  // Appends of one session are chained, so numbers are stored and announced in order.
  const chains = new Map<string, Promise<unknown>>();
  let subscribers = 0;

  async function write(sessionId: string, turnId: string | null, type: EventType, data: unknown): Promise<SessionEvent> {
    for (let attempt = 0; ; attempt++) {
      let seq = next.get(sessionId);
      if (seq === undefined) seq = (await repo.maxSeq(sessionId)) + 1;
      const row: EventRow = { session_id: sessionId, seq, turn_id: turnId, type, data: JSON.stringify(data ?? null), created_at: Date.now() };
      try {
        await repo.insert(row);
        next.set(sessionId, seq + 1);
        return toEvent(row);
      } catch (err) {
        // Another writer (a previous owner of the session) used the number: read it again.
        if (!isUniqueViolation(err) || attempt >= 5) throw err;
        next.delete(sessionId);
      }
    }
  }

  return {
    append(sessionId, turnId, type, data) {
      const prev = chains.get(sessionId) ?? Promise.resolve();
      const p = prev.then(async () => {
        const e = await write(sessionId, turnId, type, data);
        bus.emit(sessionId, e);
        return e;
      });
      const tail = p.catch(() => {});
      chains.set(sessionId, tail);
      void tail.then(() => {
        if (chains.get(sessionId) === tail) chains.delete(sessionId);
      });
      return p;
    },
    async after(sessionId, afterSeq, opts = {}) {
      return (await repo.after(sessionId, afterSeq, { turnId: opts.turnId, limit: opts.limit ?? 500 })).map(toEvent);
    },
    subscribe(sessionId, fn) {
      bus.on(sessionId, fn);
      subscribers++;
      let done = false;
      return () => {
        if (done) return;
        done = true;
        subscribers--;
        bus.off(sessionId, fn);
      };
    },
    get subscribers() {
      return subscribers;
    },
  };
}
