/**
 * @module turns/events
 * The event log of each session: every event gets the session's next number, is announced to
 * live subscribers at once, and is written to the database in small batches (one statement per
 * batch, within a few milliseconds) so that a turn's dozens of stream events do not each wait
 * for a write. Until written, an event stays readable from memory: `after()` reads memory
 * first and the database second, so a replaying subscriber never falls between the two.
 */
import { EventEmitter } from 'node:events';
import type { FastifyBaseLogger } from 'fastify';
import type { EventRepository, EventRow } from '../storage/events-repo.js';

export type EventType = 'turn' | 'message' | 'permission_request' | 'permission_resolved' | 'error' | 'done';

export interface SessionEvent {
  seq: number;
  session_id: string;
  turn_id: string | null;
  type: EventType;
  readonly data: unknown;
  /** The data's JSON text, when the event was read back from the database. */
  raw?: string;
  created_at: number;
}

export interface EventLog {
  /**
   * Numbers, announces and queues an event for writing. `data` is stored as it is when written
   * (a little later): callers hand it over and do not change it afterwards. Returns the event itself when the
   * session's numbering is already known (the common case), else a promise of it.
   */
  append(sessionId: string, turnId: string | null, type: EventType, data: unknown): SessionEvent | Promise<SessionEvent>;
  /** The number of a turn's `done` event (written or not yet), null while the turn has none. */
  doneSeq(sessionId: string, turnId: string): Promise<number | null>;
  /** Events after `afterSeq` (of one turn, when given), oldest first: written or not yet. */
  after(sessionId: string, afterSeq: number, opts?: { turnId?: string | undefined; limit?: number }): Promise<SessionEvent[]>;
  /**
   * Live events of a session; returns the unsubscribe function. `null` means "events were
   * stored elsewhere (another replica): read them with `after()`".
   */
  subscribe(sessionId: string, fn: (e: SessionEvent | null) => void): () => void;
  /** Tells the session's live subscribers that another replica stored events. */
  poke(sessionId: string): void;
  /** Tells every live subscriber to read the log again (notices from other replicas may have been lost). */
  pokeAll(): void;
  /**
   * True when live events arrive complete and in order (one writer per log), so a subscriber
   * may send them as they come; false when it must read them back in order with `after()`.
   */
  readonly direct: boolean;
  /** Writes everything still in memory (before the database closes). */
  flush(): Promise<void>;
  /**
   * Before a purge: drops the session's events not yet written and waits for a write in flight,
   * so nothing of it reaches the database after its rows are deleted.
   */
  drop(sessionId: string): Promise<void>;
  /** Number of live subscriptions. */
  readonly subscribers: number;
}

/**
 * An event read back from the database. Its data is parsed only when asked for: a replay sends
 * the stored JSON text (`raw`) as it is.
 */
function toEvent(r: EventRow): SessionEvent {
  let parsed: unknown;
  let done = false;
  return {
    seq: Number(r.seq),
    session_id: r.session_id,
    turn_id: r.turn_id,
    type: r.type as EventType,
    raw: r.data,
    get data() {
      if (!done) {
        parsed = JSON.parse(r.data);
        done = true;
      }
      return parsed;
    },
    created_at: Number(r.created_at),
  };
}

/**
 * A turn's `result` is its turn row's: the `turn` and `done` events of an ended turn are stored
 * without a long one (marked with this key) and get it back from the row when read. A long answer is
 * then stored in its whole message and its row, not also twice more in the log.
 */
const RESULT_IN_TURN = '$result';
const ELIDE_OVER = 256;
/** The stored text of data whose result is left out, marked to be read back from the turn row. */
const withoutResult = (d: object) => JSON.stringify({ ...d, result: null, [RESULT_IN_TURN]: 'turn' });

/**
 * A stored `result` message's text with its result left out (marked), when that result is exactly
 * its ended turn's (whose row keeps it); null when it is to be kept as it is.
 */
export function foldedResult(data: string, turnResult: string | null): string | null {
  if (turnResult === null || turnResult.length <= ELIDE_OVER) return null;
  const d = JSON.parse(data) as { type?: unknown; result?: unknown };
  if (d.type !== 'result' || d.result !== turnResult) return null;
  return withoutResult(d);
}

/** The JSON text an event's data is stored as. */
function storedData(type: string, data: unknown): string {
  const d = data as { result?: unknown } | null;
  if ((type === 'turn' || type === 'done') && d && typeof d === 'object' && typeof d.result === 'string' && d.result.length > ELIDE_OVER) {
    return withoutResult(d);
  }
  return JSON.stringify(data ?? null) ?? 'null';
}

/** Where the log reads an ended turn's result back from (the turns table). */
export type TurnResults = (turnIds: string[]) => Promise<Map<string, string | null>>;

/** Events read back from the database, with the results left out of `turn`/`done` events put back. */
async function fromRows(rows: EventRow[], results: TurnResults): Promise<SessionEvent[]> {
  const marked = (r: EventRow) => (r.type === 'turn' || r.type === 'done' || r.type === 'message') && r.turn_id !== null && r.data.includes(`"${RESULT_IN_TURN}":"turn"`);
  const ids = [...new Set(rows.filter(marked).map((r) => r.turn_id!))];
  const got = ids.length > 0 ? await results(ids) : new Map<string, string | null>();
  return rows.map((r) => {
    if (!marked(r)) return toEvent(r);
    const d = JSON.parse(r.data) as Record<string, unknown>;
    // The text matched; only the top-level mark is ours (a tool's input may hold the same words).
    if (d[RESULT_IN_TURN] !== 'turn' || d.result !== null) return toEvent(r);
    delete d[RESULT_IN_TURN];
    d.result = got.get(r.turn_id!) ?? null;
    return toEvent({ ...r, data: JSON.stringify(d) });
  });
}

/** A token-level partial: kept while its turn runs and a while after (PARTIAL_EVENTS_KEEP_MS), then removed. */
const isPartial = (type: string, data: unknown) => type === 'message' && (data as { type?: unknown } | null)?.type === 'stream_event';

/** What the log's upkeep does with an event later: 1 remove (a partial), 3 fold its result, 0 nothing. */
function stage(type: string, data: unknown): number {
  if (isPartial(type, data)) return 1;
  const d = data as { type?: unknown; result?: unknown } | null;
  return type === 'message' && d?.type === 'result' && typeof d.result === 'string' && d.result.length > ELIDE_OVER ? 3 : 0;
}

/** An event as stored; one whose data cannot be serialized is stored as a note of that, not lost with its batch. */
function toRow(e: SessionEvent): EventRow {
  let data: string;
  try {
    data = storedData(e.type, e.data);
  } catch (err) {
    data = JSON.stringify({ unserializable: true, reason: String((err as Error).message ?? err) });
  }
  return { session_id: e.session_id, seq: e.seq, turn_id: e.turn_id, type: e.type, data, created_at: e.created_at, transient: stage(e.type, e.data) };
}

interface Stream {
  next: number;
  /** Numbered, not yet written (includes the batch being written); serialized only when written. */
  unwritten: SessionEvent[];
  writing: Promise<void> | null;
}

const BATCH = 500;
const WRITE_DELAY_MS = 100;
const MAX_STREAMS = 10_000;

/** The live side of a session log: who follows which session (the same for both logs). */
function createLiveBus() {
  const bus = new EventEmitter();
  bus.setMaxListeners(0);
  let subscribers = 0;
  return {
    emit: (sessionId: string, e: SessionEvent | null) => bus.emit(sessionId, e),
    listeners: (sessionId: string) => bus.listenerCount(sessionId),
    subscribe(sessionId: string, fn: (e: SessionEvent | null) => void): () => void {
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
    poke(sessionId: string) {
      bus.emit(sessionId, null);
    },
    pokeAll() {
      for (const name of bus.eventNames()) bus.emit(name, null);
    },
    get subscribers() {
      return subscribers;
    },
  };
}

export function createEventLog(repo: EventRepository, results: TurnResults, log?: FastifyBaseLogger): EventLog {
  const live = createLiveBus();
  const streams = new Map<string, Stream>();
  /** Appends made while a session's numbering is being read, in call order. */
  const opening = new Map<string, Array<{ turnId: string | null; type: EventType; data: unknown; resolve: (e: SessionEvent) => void; reject: (e: unknown) => void }>>();

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
        await repo.insertMany(batch.map(toRow));
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

  return {
    append(sessionId, turnId, type, data) {
      const st = streams.get(sessionId);
      if (st) return emit(sessionId, st, turnId, type, data);
      const calls = opening.get(sessionId) ?? open(sessionId);
      return new Promise<SessionEvent>((resolve, reject) => calls.push({ turnId, type, data, resolve, reject }));
    },
    async doneSeq(sessionId, turnId) {
      const mem = streams.get(sessionId)?.unwritten.find((e) => e.turn_id === turnId && e.type === 'done');
      return mem ? mem.seq : repo.doneSeq(sessionId, turnId);
    },
    async after(sessionId, afterSeq, opts = {}) {
      const limit = opts.limit ?? 500;
      // Memory first, then the database: an event being written is in one or the other.
      const st = streams.get(sessionId);
      const mem = (st?.unwritten ?? []).filter((e) => e.seq > afterSeq && (!opts.turnId || e.turn_id === opts.turnId));
      const stored = await fromRows(await repo.after(sessionId, afterSeq, { turnId: opts.turnId, limit }), results);
      const bySeq = new Map<number, SessionEvent>();
      for (const e of stored) bySeq.set(e.seq, e);
      for (const e of mem) bySeq.set(e.seq, e);
      return [...bySeq.values()].sort((a, b) => a.seq - b.seq).slice(0, limit);
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
      await Promise.all([...streams.values()].map((s) => s.writing));
    },
    get subscribers() {
      return live.subscribers;
    },
  };
}

/**
 * The event log shared by several replicas (PostgreSQL): an event is numbered where it is
 * written, in a transaction holding the session's lock, then announced here and to the other
 * replicas. Appends to one session are written in order, several at a time: while one write is
 * in flight the next ones gather, so a burst costs a few transactions, not one each.
 */
export function createSharedEventLog(repo: EventRepository, results: TurnResults, notify: (sessionId: string) => void, log?: FastifyBaseLogger): EventLog {
  const live = createLiveBus();
  interface Pending {
    row: Omit<EventRow, 'seq'>;
    /** The data as appended (the row's may leave the result out). */
    data: unknown;
    resolve: (e: SessionEvent) => void;
    reject: (err: unknown) => void;
  }
  const queues = new Map<string, { pending: Pending[]; writing: Promise<void> }>();

  async function drain(sessionId: string, q: { pending: Pending[] }): Promise<void> {
    while (q.pending.length > 0) {
      const batch = q.pending.splice(0, BATCH);
      try {
        const rows = await repo.appendNumbered(sessionId, batch.map((b) => b.row));
        // Announced with the data as appended: live subscribers need no read back.
        const events = rows.map((r, i): SessionEvent => ({ seq: Number(r.seq), session_id: r.session_id, turn_id: r.turn_id, type: r.type as EventType, data: batch[i]!.data ?? null, created_at: Number(r.created_at) }));
        events.forEach((e, i) => {
          live.emit(sessionId, e);
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

  return {
    direct: false,
    append(sessionId, turnId, type, data) {
      return new Promise<SessionEvent>((resolve, reject) => {
        const row = { session_id: sessionId, turn_id: turnId, type, data: storedData(type, data), created_at: Date.now(), transient: stage(type, data) };
        const q = queues.get(sessionId);
        if (q) {
          q.pending.push({ row, data, resolve, reject });
          return;
        }
        const fresh = { pending: [{ row, data, resolve, reject }], writing: Promise.resolve() };
        queues.set(sessionId, fresh);
        fresh.writing = drain(sessionId, fresh);
      });
    },
    doneSeq: (sessionId, turnId) => repo.doneSeq(sessionId, turnId),
    async after(sessionId, afterSeq, opts = {}) {
      return fromRows(await repo.after(sessionId, afterSeq, { turnId: opts.turnId, limit: opts.limit ?? 500 }), results);
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
