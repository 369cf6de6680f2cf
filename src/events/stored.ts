/**
 * @module events/stored
 * How an event is stored and read back: its JSON text (a long result of an ended turn stored
 * once, in the turn row, and put back when read), its upkeep stage (partials removed later,
 * results folded), and rows parsed only when their data is asked for.
 */
import type { EventRow } from '../storage/events-repo.js';
import type { EventType, SessionEvent, TurnResults } from './log.js';

/**
 * An event read back from the database. Its data is parsed only when asked for: a replay sends
 * the stored JSON text (`raw`) as it is.
 */
export function toEvent(r: EventRow): SessionEvent {
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
export function storedData(type: string, data: unknown): string {
  const d = data as { result?: unknown } | null;
  if ((type === 'turn' || type === 'done') && d && typeof d === 'object' && typeof d.result === 'string' && d.result.length > ELIDE_OVER) {
    return withoutResult(d);
  }
  return JSON.stringify(data ?? null) ?? 'null';
}

/**
 * Consecutive partials of one turn are stored as one row of this type, numbered as the last of them,
 * whose data is `[[seq, created_at, data], ...]`: a turn streams dozens of token events, and each row
 * written (with its index entries), then removed by the log's upkeep, cost more than the event itself.
 */
const PACKED = 'partials';

/** Events as stored: each one a row, but runs of a turn's partials one row each. */
export function toRows(events: SessionEvent[]): EventRow[] {
  const rows: EventRow[] = [];
  let run: SessionEvent[] = [];
  const flush = () => {
    if (run.length === 1) rows.push(toRow(run[0]!));
    else if (run.length > 1) {
      const last = run[run.length - 1]!;
      const data = `[${run.map((e) => `[${e.seq},${e.created_at},${toRow(e).data}]`).join(',')}]`;
      rows.push({ session_id: last.session_id, seq: last.seq, turn_id: last.turn_id, type: PACKED, data, created_at: last.created_at, transient: 1 });
    }
    run = [];
  };
  for (const e of events) {
    if (!isPartial(e.type, e.data)) {
      flush();
      rows.push(toRow(e));
      continue;
    }
    if (run.length > 0 && (run[0]!.turn_id !== e.turn_id || run[0]!.session_id !== e.session_id)) flush();
    run.push(e);
  }
  flush();
  return rows;
}

/** A packed row's partials after `afterSeq`, each as the row it would have been. */
function unpack(r: EventRow, afterSeq: number): EventRow[] {
  const all = JSON.parse(r.data) as Array<[number, number, unknown]>;
  return all
    .filter(([seq]) => seq > afterSeq)
    .map(([seq, created_at, data]) => ({
      session_id: r.session_id,
      seq,
      turn_id: r.turn_id,
      type: 'message',
      data: JSON.stringify(data),
      created_at,
      transient: 1,
    }));
}

/**
 * Events read back from the database after `afterSeq` (packed partials unpacked: a packed row, numbered as
 * its last, may hold some at or before the position), with the results left out of `turn`/`done` events
 * put back. Every event of the rows read is returned, so a page may hold more events than rows.
 */
export async function fromRows(stored: EventRow[], results: TurnResults, afterSeq = 0): Promise<SessionEvent[]> {
  const rows = stored.some((r) => r.type === PACKED) ? stored.flatMap((r) => (r.type === PACKED ? unpack(r, afterSeq) : [r])) : stored;
  const marked = (r: EventRow) =>
    (r.type === 'turn' || r.type === 'done' || r.type === 'message') && r.turn_id !== null && r.data.includes(`"${RESULT_IN_TURN}":"turn"`);
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
export function stage(type: string, data: unknown): number {
  if (isPartial(type, data)) return 1;
  const d = data as { type?: unknown; result?: unknown } | null;
  return type === 'message' && d?.type === 'result' && typeof d.result === 'string' && d.result.length > ELIDE_OVER ? 3 : 0;
}

/** An event as stored; one whose data cannot be serialized is stored as a note of that, not lost with its batch. */
export function toRow(e: SessionEvent): EventRow {
  let data: string;
  try {
    data = storedData(e.type, e.data);
  } catch (err) {
    data = JSON.stringify({ unserializable: true, reason: String((err as Error).message ?? err) });
  }
  return { session_id: e.session_id, seq: e.seq, turn_id: e.turn_id, type: e.type, data, created_at: e.created_at, transient: stage(e.type, e.data) };
}
