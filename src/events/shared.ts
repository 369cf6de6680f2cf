/**
 * @module events/shared
 * The event log of several replicas over PostgreSQL; the other replicas are told of new events
 * through the cluster, and their subscribers read them back in order.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { EventRepository, EventRow } from '../storage/events-repo.js';
import type { Cluster } from '../cluster/cluster.js';
import type { EventLog, EventType, SessionEvent, TurnResults } from './log.js';
import { fromRows, stage, storedData } from './stored.js';
import { createLiveBus } from './live-bus.js';

const BATCH = 500;

/**
 * The event log shared by several replicas (PostgreSQL): an event is numbered where it is
 * written, in a transaction holding the session's lock, then announced here and to the other
 * replicas. Appends to one session are written in order, several at a time: while one write is
 * in flight the next ones gather, so a burst costs a few transactions, not one each.
 */
export function createSharedEventLog(
  repo: EventRepository,
  results: TurnResults,
  cluster: Pick<Cluster, 'publish' | 'onMessage'>,
  log?: FastifyBaseLogger,
): EventLog {
  const live = createLiveBus();
  // Another replica stored events of a session: its subscribers here read them back.
  cluster.onMessage((m) => {
    if (m.k === 'events') live.poke(m.s);
  });
  const notify = (sessionId: string) => cluster.publish({ k: 'events', s: sessionId });
  interface Pending {
    row: Omit<EventRow, 'seq'>;
    /** The data as appended (the row's may leave the result out). */
    data: unknown;
    /** Written only if its turn is still queued when numbered (`appendQueued`). */
    onlyIfQueued: boolean;
    /** With null: not written (the turn had left the queue). */
    resolve: (e: SessionEvent | null) => void;
    reject: (err: unknown) => void;
  }
  const queues = new Map<string, { pending: Pending[]; writing: Promise<void> }>();

  async function drain(sessionId: string, q: { pending: Pending[] }): Promise<void> {
    while (q.pending.length > 0) {
      const batch = q.pending.splice(0, BATCH);
      try {
        const rows = await repo.appendNumbered(
          sessionId,
          batch.map((b) => b.row),
          batch.map((b) => b.onlyIfQueued),
        );
        // Announced with the data as appended: live subscribers need no read back.
        const events = rows.map(
          (r, i): SessionEvent | null =>
            r && {
              seq: Number(r.seq),
              session_id: r.session_id,
              turn_id: r.turn_id,
              type: r.type as EventType,
              data: batch[i]!.data ?? null,
              created_at: Number(r.created_at),
            },
        );
        events.forEach((e, i) => {
          if (e) live.emit(sessionId, e);
          batch[i]!.resolve(e);
        });
        notify(sessionId);
      } catch (err) {
        log?.error({ err, session_id: sessionId, events: batch.length }, 'could not store events');
        for (const b of batch) b.reject(err);
      }
    }
    queues.delete(sessionId);
  }

  function enqueue(sessionId: string, turnId: string | null, type: EventType, data: unknown, onlyIfQueued: boolean): Promise<SessionEvent | null> {
    return new Promise<SessionEvent | null>((resolve, reject) => {
      const row = { session_id: sessionId, turn_id: turnId, type, data: storedData(type, data), created_at: Date.now(), transient: stage(type, data) };
      const pending: Pending = { row, data, onlyIfQueued, resolve, reject };
      const q = queues.get(sessionId);
      if (q) {
        q.pending.push(pending);
        return;
      }
      const fresh = { pending: [pending], writing: Promise.resolve() };
      queues.set(sessionId, fresh);
      fresh.writing = drain(sessionId, fresh);
    });
  }

  return {
    direct: false,
    async append(sessionId, turnId, type, data) {
      return (await enqueue(sessionId, turnId, type, data, false))!;
    },
    async appendQueued(sessionId, turnId, data) {
      return (await enqueue(sessionId, turnId, 'turn', data, true)) !== null;
    },
    doneSeq: (sessionId, turnId) => repo.doneSeq(sessionId, turnId),
    lastSeq: (sessionId) => repo.maxSeq(sessionId),
    async after(sessionId, afterSeq, opts = {}) {
      // (Packed partials, written by a single process's log on this database before, may start before the position.)
      return fromRows(await repo.after(sessionId, afterSeq, { turnId: opts.turnId, limit: opts.limit ?? 500 }), results, afterSeq);
    },
    subscribe: live.subscribe,
    poke: live.poke,
    pokeAll: live.pokeAll,
    async drop(sessionId) {
      await queues.get(sessionId)?.writing;
    },
    async flush() {
      await Promise.all([...queues.values()].map((q) => q.writing));
    },
    get subscribers() {
      return live.subscribers;
    },
  };
}
