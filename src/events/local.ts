/**
 * @module events/local
 * The event log of one process: events are numbered here, announced at once, and written to
 * the database in small batches (one statement per batch, within a few milliseconds) so that a
 * turn's dozens of stream events do not each wait for a write. Until written, an event stays
 * readable from memory: `after()` reads memory first and the database second, so a replaying
 * subscriber never falls between the two.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { EventRepository } from '../storage/events-repo.js';
import type { EventLog, EventType, SessionEvent, TurnResults } from './log.js';
import { fromRows, toRows } from './stored.js';
import { createLiveBus } from './live-bus.js';

interface Stream {
  next: number;
  /** Numbered, not yet written (includes the batch being written); serialized only when written. */
  unwritten: SessionEvent[];
  writing: Promise<void> | null;
}

const BATCH = 500;
const WRITE_DELAY_MS = 100;
const MAX_STREAMS = 10_000;

export function createEventLog(repo: EventRepository, results: TurnResults, log?: FastifyBaseLogger): EventLog {
  const live = createLiveBus();
  const streams = new Map<string, Stream>();
  /** Appends made while a session's numbering is being read, in call order. */
  const opening = new Map<
    string,
    Array<{ turnId: string | null; type: EventType; data: unknown; resolve: (e: SessionEvent) => void; reject: (e: unknown) => void }>
  >();

  /** Reads the session's next number once, then numbers the appends that waited for it, in order. */
  function open(sessionId: string) {
    const calls: NonNullable<ReturnType<typeof opening.get>> = [];
    opening.set(sessionId, calls);
    repo.maxSeq(sessionId).then(
      (max) => {
        const st: Stream = { next: max + 1, unwritten: [], writing: null };
        opening.delete(sessionId);
        for (const c of calls) c.resolve(emit(sessionId, st, c.turnId, c.type, c.data));
        streams.set(sessionId, st);
      },
      (err) => {
        opening.delete(sessionId);
        for (const c of calls) c.reject(err);
      },
    );
    return calls;
  }

  async function write(sessionId: string, st: Stream): Promise<void> {
    while (st.unwritten.length > 0) {
      const batch = st.unwritten.slice(0, BATCH);
      try {
        await repo.insertMany(toRows(batch));
      } catch (err) {
        log?.error({ err, session_id: sessionId, events: batch.length }, 'could not store events');
      }
      st.unwritten.splice(0, batch.length);
    }
    st.writing = null;
    // Numbering stays known for active sessions; past a bound, idle ones are forgotten (re-read later).
    if (streams.size > MAX_STREAMS) {
      for (const [id, other] of streams) {
        if (streams.size <= MAX_STREAMS / 2) break;
        if (other.unwritten.length === 0 && !other.writing && live.listeners(id) === 0) streams.delete(id);
      }
    }
  }

  function emit(sessionId: string, st: Stream, turnId: string | null, type: EventType, data: unknown): SessionEvent {
    const event: SessionEvent = { seq: st.next++, session_id: sessionId, turn_id: turnId, type, data: data ?? null, created_at: Date.now() };
    // Serialized when written, after the turn has moved on: the CLI's output is not held up by it.
    st.unwritten.push(event);
    live.emit(sessionId, event);
    // Written a little later in one statement: a short turn costs one write, made after it ends.
    if (!st.writing) st.writing = new Promise<void>((r) => setTimeout(r, WRITE_DELAY_MS)).then(() => write(sessionId, st));
    return event;
  }

  function append(sessionId: string, turnId: string | null, type: EventType, data: unknown): SessionEvent | Promise<SessionEvent> {
    const st = streams.get(sessionId);
    if (st) return emit(sessionId, st, turnId, type, data);
    const calls = opening.get(sessionId) ?? open(sessionId);
    return new Promise<SessionEvent>((resolve, reject) => calls.push({ turnId, type, data, resolve, reject }));
  }

  return {
    append,
    // One process: its actors wait for this event before a turn's running (engine state `announcing`).
    async appendQueued(sessionId, turnId, data) {
      await append(sessionId, turnId, 'turn', data);
      return true;
    },
    async doneSeq(sessionId, turnId) {
      const mem = streams.get(sessionId)?.unwritten.find((e) => e.turn_id === turnId && e.type === 'done');
      return mem ? mem.seq : repo.doneSeq(sessionId, turnId);
    },
    async lastSeq(sessionId) {
      const st = streams.get(sessionId);
      return st ? st.next - 1 : repo.maxSeq(sessionId);
    },
    async after(sessionId, afterSeq, opts = {}) {
      const limit = opts.limit ?? 500;
      // Memory first, then the database: an event being written is in one or the other.
      const st = streams.get(sessionId);
      const mem = (st?.unwritten ?? []).filter((e) => e.seq > afterSeq && (!opts.turnId || e.turn_id === opts.turnId));
      const rows = await repo.after(sessionId, afterSeq, { turnId: opts.turnId, limit });
      // A full page of rows ends at its last row: events in memory past it would leave a gap before them.
      const upTo = rows.length === limit ? Number(rows[rows.length - 1]!.seq) : Infinity;
      const stored = await fromRows(rows, results, afterSeq);
      const bySeq = new Map<number, SessionEvent>();
      for (const e of stored) bySeq.set(e.seq, e);
      for (const e of mem) if (e.seq <= upTo) bySeq.set(e.seq, e);
      return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
    },
    poke: live.poke,
    pokeAll: live.pokeAll,
    direct: true,
    subscribe: live.subscribe,
    async drop(sessionId) {
      const st = streams.get(sessionId);
      if (!st) return;
      st.unwritten.length = 0;
      await st.writing;
      streams.delete(sessionId);
    },
    async flush() {
      await Promise.all([...streams.values()].map(async (s) => s.writing));
    },
    get subscribers() {
      return live.subscribers;
    },
  };
}
