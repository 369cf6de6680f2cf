/**
 * @module storage/events-repo
 * The stored event log. Events are numbered per session (`seq`); the primary key
 * (session_id, seq) makes a second writer of the same number fail instead of interleaving.
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, EventsTable } from './schema.js';

export type EventRow = Selectable<EventsTable>;

export interface EventRepository {
  /** Writes several events in one statement. */
  insertMany(rows: EventRow[]): Promise<void>;
  /**
   * Numbers and writes events in one transaction that holds the session's lock (several
   * replicas may write to one session's log): numbers are given in commit order, so a reader
   * that has seen number n has seen every number below it. A row flagged in `onlyIfQueued` is
   * written only if its turn is still queued then (null in its place otherwise).
   */
  appendNumbered(sessionId: string, rows: Array<Omit<EventRow, 'seq'>>, onlyIfQueued?: boolean[]): Promise<Array<EventRow | null>>;
  /** Highest seq of a session, 0 when it has none. */
  maxSeq(sessionId: string): Promise<number>;
  /** The seq of a turn's `done` event, null when it has none (yet). */
  doneSeq(sessionId: string, turnId: string): Promise<number | null>;
  /**
   * Removes, at most `limit` at a time, token-level partials written before `cutoff` of turns that
   * finished before it; returns how many went. A session's last event always stays (its number is
   * where the session's numbering goes on).
   */
  compactPartials(cutoff: number, limit: number): Promise<number>;
  /**
   * `result` messages written before `cutoff` of turns that finished before it, at most `limit`,
   * with their turn's stored result; `done` marks them handled (with new data when given).
   */
  resultsToFold(cutoff: number, limit: number): Promise<Array<{ session_id: string; seq: number; data: string; result: string | null }>>;
  folded(rows: Array<{ session_id: string; seq: number; data?: string | undefined }>): Promise<void>;
  /** Removes, at most `limit` at a time, events written before `cutoff`, each session's last one excepted. */
  expire(cutoff: number, limit: number): Promise<number>;
  /** Events of a session (or of one turn) after `afterSeq`, oldest first. */
  after(sessionId: string, afterSeq: number, opts: { turnId?: string | undefined; limit: number }): Promise<EventRow[]>;
}

export function createEventRepository(db: Kysely<Database>): EventRepository {
  return {
    async insertMany(rows) {
      if (rows.length > 0) await db.insertInto('events').values(rows).execute();
    },
    async appendNumbered(sessionId, rows, onlyIfQueued) {
      if (rows.length === 0) return [];
      return db.transaction().execute(async (tx) => {
        await sql`select pg_advisory_xact_lock(hashtext(${`events/${sessionId}`}))`.execute(tx);
        // Read under the lock: a turn claimed since was claimed before its `running` can be numbered.
        const asked = [...new Set(rows.flatMap((row, i) => (onlyIfQueued?.[i] && row.turn_id ? [row.turn_id] : [])))];
        const queued = new Set<string>();
        if (asked.length > 0)
          for (const t of await tx.selectFrom('turns').select(['turn_id', 'status']).where('turn_id', 'in', asked).execute())
            if (t.status === 'queued') queued.add(t.turn_id);
        const r = await tx
          .selectFrom('events')
          .select((eb) => eb.fn.max('seq').as('m'))
          .where('session_id', '=', sessionId)
          .executeTakeFirst();
        let seq = Number(r?.m ?? 0);
        const numbered = rows.map((row, i) => (onlyIfQueued?.[i] && !queued.has(row.turn_id ?? '') ? null : { ...row, seq: ++seq }));
        const written = numbered.filter((row) => row !== null);
        for (let i = 0; i < written.length; i += 500)
          await tx
            .insertInto('events')
            .values(written.slice(i, i + 500))
            .execute();
        return numbered;
      });
    },
    async maxSeq(sessionId) {
      const r = await db
        .selectFrom('events')
        .select((eb) => eb.fn.max('seq').as('m'))
        .where('session_id', '=', sessionId)
        .executeTakeFirst();
      return Number(r?.m ?? 0);
    },
    async doneSeq(sessionId, turnId) {
      // A turn's done is its last event (events_turn index).
      const r = await db
        .selectFrom('events')
        .select(['seq', 'type'])
        .where('turn_id', '=', turnId)
        .where('session_id', '=', sessionId)
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
      return r && r.type === 'done' ? Number(r.seq) : null;
    },
    async compactPartials(cutoff, limit) {
      const r = await sql`
        delete from events where (session_id, seq) in (
          select e.session_id, e.seq from events e
          where e.transient = 1 and e.created_at < ${cutoff}
            and exists (select 1 from turns t where t.turn_id = e.turn_id and t.finished_at < ${cutoff})
            and e.seq < (select max(m.seq) from events m where m.session_id = e.session_id)
          limit ${limit})`.execute(db);
      return Number(r.numAffectedRows ?? 0);
    },
    async resultsToFold(cutoff, limit) {
      const rows = await db
        .selectFrom('events as e')
        .innerJoin('turns as t', 't.turn_id', 'e.turn_id')
        .select(['e.session_id', 'e.seq', 'e.data', 't.result'])
        .where('e.transient', '=', 3)
        .where('e.created_at', '<', cutoff)
        .where('t.finished_at', '<', cutoff)
        .limit(limit)
        .execute();
      return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    },
    async folded(rows) {
      if (rows.length === 0) return;
      await db.transaction().execute(async (tx) => {
        for (const r of rows) {
          await tx
            .updateTable('events')
            .set({ transient: 0, ...(r.data !== undefined ? { data: r.data } : {}) })
            .where('session_id', '=', r.session_id)
            .where('seq', '=', r.seq)
            .execute();
        }
      });
    },
    async expire(cutoff, limit) {
      const r = await sql`
        delete from events where (session_id, seq) in (
          select e.session_id, e.seq from events e
          where e.created_at < ${cutoff}
            and e.seq < (select max(m.seq) from events m where m.session_id = e.session_id)
          limit ${limit})`.execute(db);
      return Number(r.numAffectedRows ?? 0);
    },
    async after(sessionId, afterSeq, opts) {
      let q = db.selectFrom('events').selectAll().where('session_id', '=', sessionId).where('seq', '>', afterSeq);
      if (opts.turnId) q = q.where('turn_id', '=', opts.turnId);
      return q.orderBy('seq', 'asc').limit(opts.limit).execute();
    },
  };
}
