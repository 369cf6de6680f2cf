/**
 * @module storage/turns-repo
 * Turn rows. A turn is inserted `queued` with the next sequence number of its session and is
 * moved to `running` by a conditional update; the partial unique index
 * `turns_one_running_per_session` makes "one running turn per session" a property of the
 * database, not of one process's memory.
 */
import { sql, type Kysely, type Selectable, type Updateable } from 'kysely';
import type { Database, TurnsTable } from './schema.js';
import { isUniqueViolation } from './db.js';
import { prepared } from './prepared.js';
import { storeText } from './text.js';
import { dbNow } from './leases-repo.js';

export type TurnRow = Selectable<TurnsTable>;
export type NewTurn = Omit<TurnRow, 'seq'>;
export type { TurnStatus } from '../schemas.js';
import type { TurnStatus } from '../schemas.js';

export interface TurnRepository {
  /**
   * Inserts a turn with the next sequence number of its session (retrying on a race for the
   * number). A turn inserted as `running` gets null when the session already has one running.
   */
  insert(turn: NewTurn): Promise<TurnRow | null>;
  get(turnId: string): Promise<TurnRow | undefined>;
  /** The results of these turns, as stored (see storage/text.ts); a turn that is gone is absent. */
  results(turnIds: string[]): Promise<Map<string, string | null>>;
  /** Removes a turn that is still queued (a refused submission); false if it already started. */
  removeQueued(turnId: string): Promise<boolean>;
  /** Turns of a session in order, optionally of one status, after a sequence number. */
  listBySession(
    sessionId: string,
    opts: { status?: TurnStatus | undefined; limit: number; afterSeq?: number | undefined; beforeSeq?: number | undefined; desc?: boolean },
  ): Promise<TurnRow[]>;
  /** Unfinished (queued or running) turns of a session before `seq`, oldest first. */
  unfinishedBefore(sessionId: string, seq: number): Promise<TurnRow[]>;
  /** The oldest queued turn of a session. */
  nextQueued(sessionId: string): Promise<TurnRow | undefined>;
  /**
   * Moves a queued turn to running. False when it is no longer queued (cancelled) or when the
   * session already has a running turn (the database refuses a second one).
   */
  claim(turnId: string, at: number, runnerId: string): Promise<boolean>;
  /** Cancels a turn only if it is still queued. */
  cancelQueued(turnId: string, at: number): Promise<boolean>;
  update(turnId: string, patch: Updateable<TurnsTable>): Promise<void>;
  /** Records the end of a turn that `runnerId` runs; false when it no longer does (taken over). */
  finish(turnId: string, runnerId: string, patch: Updateable<TurnsTable>): Promise<boolean>;
  /** Moves a running turn from one runner to another; false if it is no longer `from`'s. */
  reassign(turnId: string, from: string | null, to: string): Promise<boolean>;
  /** Which of these turns have ended (or no longer exist). */
  endedAmong(turnIds: string[]): Promise<string[]>;
  /** Ends a running turn of a dead runner as this runner's; the row, or null if it moved meanwhile. */
  takeOver(turnId: string, fromRunner: string | null, toRunner: string, patch: Updateable<TurnsTable>): Promise<TurnRow | null>;
  /** The running turn id of each of the given sessions that has one. */
  runningBySession(sessionIds: string[]): Promise<Map<string, string>>;
  /** Sessions that have queued turns. */
  sessionsWithQueued(): Promise<string[]>;
  /** Running turns of other runners whose session has no live lease: their replica died (PostgreSQL: leases). */
  abandonedRunning(runnerId: string, limit: number): Promise<TurnRow[]>;
  /** Sessions with queued turns whose lease is free, expired or `runnerId`'s own (PostgreSQL: leases). */
  queuedUnowned(runnerId: string, limit: number): Promise<string[]>;
  /**
   * Marks every turn left running (by a process that died) as failed, except the given ones
   * (turns waiting for a tool approval, which go on); returns how many.
   */
  failRunning(at: number, code: string, message: string, opts?: { except?: string[]; runners?: Array<string | null> }): Promise<TurnRow[]>;
}

/** The columns a turn's end sets (the common case, compiled once). */
const END_KEYS = [
  'status',
  'result',
  'error_code',
  'error_message',
  'finished_at',
  'duration_ms',
  'cost_usd',
  'input_tokens',
  'output_tokens',
  'structured_output',
  'snapshot_before',
  'snapshot_after',
] as const;
const NEW_KEYS = [
  'turn_id',
  'session_id',
  'user_id',
  'status',
  'prompt',
  'permission_mode',
  'result',
  'error_code',
  'error_message',
  'created_at',
  'started_at',
  'finished_at',
  'duration_ms',
  'cost_usd',
  'input_tokens',
  'output_tokens',
  'runner_id',
  'content',
  'attachments',
  'output_schema',
  'structured_output',
  'snapshot_before',
  'snapshot_after',
] as const satisfies ReadonlyArray<keyof NewTurn>;

export function createTurnRepository(db: Kysely<Database>): TurnRepository {
  // The queries of every turn, compiled once (storage/prepared.ts).
  const getOne = prepared<{ id: string }, TurnRow>(db, ['id'], (p) => db.selectFrom('turns').selectAll().where('turn_id', '=', p.id));
  const insertOne = prepared<NewTurn, TurnRow>(db, NEW_KEYS, (p) =>
    db
      .insertInto('turns')
      .values({
        ...p,
        seq: db
          .selectFrom('turns')
          .select(sql<number>`coalesce(max(seq), 0) + 1`.as('next'))
          .where('session_id', '=', p.session_id),
      })
      .returningAll(),
  );
  type End = Record<(typeof END_KEYS)[number], unknown> & { id: string; runner: string };
  const finishOne = prepared<End, never>(db, [...END_KEYS, 'id', 'runner'], (p) =>
    db
      .updateTable('turns')
      .set(Object.fromEntries(END_KEYS.map((k) => [k, p[k]])) as Updateable<TurnsTable>)
      .where('turn_id', '=', p.id)
      .where('status', '=', 'running')
      .where('runner_id', '=', p.runner),
  );
  return {
    async insert(turn) {
      for (let attempt = 0; ; attempt++) {
        try {
          // One statement: the sequence number is computed where the row is written.
          const r = (await insertOne(turn)).rows[0];
          if (!r) throw new Error('a turn insert returned no row');
          return { ...r, seq: Number(r.seq) };
        } catch (err) {
          if (!isUniqueViolation(err) || attempt >= 50) throw err;
          if (turn.status === 'running') {
            const running = await db
              .selectFrom('turns')
              .select('turn_id')
              .where('session_id', '=', turn.session_id)
              .where('status', '=', 'running')
              .executeTakeFirst();
            if (running) return null;
          }
          await new Promise((r) => setTimeout(r, Math.random() * 5));
        }
      }
    },
    async get(turnId) {
      return (await getOne({ id: turnId })).rows[0];
    },
    async results(turnIds) {
      if (turnIds.length === 0) return new Map();
      const rows = await db.selectFrom('turns').select(['turn_id', 'result']).where('turn_id', 'in', turnIds).execute();
      return new Map(rows.map((r) => [r.turn_id, r.result]));
    },
    async removeQueued(turnId) {
      const r = await db.deleteFrom('turns').where('turn_id', '=', turnId).where('status', '=', 'queued').executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    },
    async listBySession(sessionId, opts) {
      let q = db.selectFrom('turns').selectAll().where('session_id', '=', sessionId);
      if (opts.status) q = q.where('status', '=', opts.status);
      if (opts.afterSeq !== undefined) q = q.where('seq', '>', opts.afterSeq);
      if (opts.beforeSeq !== undefined) q = q.where('seq', '<', opts.beforeSeq);
      return q
        .orderBy('seq', opts.desc ? 'desc' : 'asc')
        .limit(opts.limit)
        .execute();
    },
    async unfinishedBefore(sessionId, seq) {
      return db
        .selectFrom('turns')
        .selectAll()
        .where('session_id', '=', sessionId)
        .where('status', 'in', ['queued', 'running'])
        .where('seq', '<', seq)
        .orderBy('seq', 'asc')
        .execute();
    },
    async nextQueued(sessionId) {
      return db
        .selectFrom('turns')
        .selectAll()
        .where('session_id', '=', sessionId)
        .where('status', '=', 'queued')
        .orderBy('seq', 'asc')
        .limit(1)
        .executeTakeFirst();
    },
    async claim(turnId, at, runnerId) {
      try {
        const r = await db
          .updateTable('turns')
          .set({ status: 'running', started_at: at, runner_id: runnerId })
          .where('turn_id', '=', turnId)
          .where('status', '=', 'queued')
          .executeTakeFirst();
        return Number(r.numUpdatedRows) === 1;
      } catch (err) {
        if (isUniqueViolation(err)) return false;
        throw err;
      }
    },
    async cancelQueued(turnId, at) {
      const r = await db
        .updateTable('turns')
        .set({ status: 'cancelled', finished_at: at, error_code: 'CANCELLED', error_message: 'cancelled before it ran' })
        .where('turn_id', '=', turnId)
        .where('status', '=', 'queued')
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async update(turnId, patch) {
      await db.updateTable('turns').set(patch).where('turn_id', '=', turnId).execute();
    },
    async finish(turnId, runnerId, given) {
      // The CLI's text, stored losslessly (a NUL in a tool's output reaches the result).
      const patch = { ...given };
      if ('result' in patch) patch.result = storeText(patch.result);
      if ('error_message' in patch) patch.error_message = storeText(patch.error_message);
      const keys = Object.keys(patch);
      if (keys.length === END_KEYS.length && END_KEYS.every((k) => k in patch)) {
        const r = await finishOne({ ...(patch as Record<(typeof END_KEYS)[number], unknown>), id: turnId, runner: runnerId });
        return Number(r.numAffectedRows ?? 0) === 1;
      }
      const r = await db
        .updateTable('turns')
        .set(patch)
        .where('turn_id', '=', turnId)
        .where('status', '=', 'running')
        .where('runner_id', '=', runnerId)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async reassign(turnId, from, to) {
      const r = await db
        .updateTable('turns')
        .set({ runner_id: to })
        .where('turn_id', '=', turnId)
        .where('status', '=', 'running')
        .where((eb) => (from === null ? eb('runner_id', 'is', null) : eb('runner_id', '=', from)))
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async endedAmong(turnIds) {
      const ended: string[] = [];
      for (let i = 0; i < turnIds.length; i += 500) {
        const ids = turnIds.slice(i, i + 500);
        const open = new Set(
          (await db.selectFrom('turns').select('turn_id').where('turn_id', 'in', ids).where('status', 'in', ['queued', 'running']).execute()).map(
            (r) => r.turn_id,
          ),
        );
        for (const id of ids) if (!open.has(id)) ended.push(id);
      }
      return ended;
    },
    async takeOver(turnId, fromRunner, toRunner, patch) {
      const r = await db
        .updateTable('turns')
        .set({ ...patch, runner_id: toRunner })
        .where('turn_id', '=', turnId)
        .where('status', '=', 'running')
        .where((eb) => (fromRunner === null ? eb('runner_id', 'is', null) : eb('runner_id', '=', fromRunner)))
        .returningAll()
        .executeTakeFirst();
      return r ? { ...r, seq: Number(r.seq) } : null;
    },
    async runningBySession(sessionIds) {
      if (sessionIds.length === 0) return new Map();
      const rows = await db
        .selectFrom('turns')
        .select(['session_id', 'turn_id'])
        .where('session_id', 'in', sessionIds)
        .where('status', '=', 'running')
        .execute();
      return new Map(rows.map((r) => [r.session_id, r.turn_id]));
    },
    async sessionsWithQueued() {
      const rows = await db.selectFrom('turns').select('session_id').distinct().where('status', '=', 'queued').execute();
      return rows.map((r) => r.session_id);
    },
    async failRunning(at, code, message, opts = {}) {
      let q = db.updateTable('turns').set({ status: 'failed', error_code: code, error_message: message, finished_at: at }).where('status', '=', 'running');
      if (opts.except && opts.except.length > 0) q = q.where('turn_id', 'not in', opts.except);
      if (opts.runners) {
        const ids = opts.runners.filter((r): r is string => r !== null);
        const orNull = opts.runners.includes(null);
        q = q.where((eb) => eb.or([...(ids.length > 0 ? [eb('runner_id', 'in', ids)] : []), ...(orNull ? [eb('runner_id', 'is', null)] : [])]));
      }
      return (await q.returningAll().execute()).map((r) => ({ ...r, seq: Number(r.seq) }));
    },
    async abandonedRunning(runnerId, limit) {
      const rows = await db
        .selectFrom('turns as t')
        .leftJoin('session_leases as l', 'l.session_id', 't.session_id')
        .selectAll('t')
        .where('t.status', '=', 'running')
        .where((eb) => eb.or([eb('t.runner_id', 'is', null), eb('t.runner_id', '!=', runnerId)]))
        .where((eb) => eb.or([eb('l.session_id', 'is', null), eb('l.expires_at', '<', dbNow)]))
        .limit(limit)
        .execute();
      return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    },
    async queuedUnowned(runnerId, limit) {
      const rows = await db
        .selectFrom('turns as t')
        .leftJoin('session_leases as l', 'l.session_id', 't.session_id')
        .select('t.session_id')
        .distinct()
        .where('t.status', '=', 'queued')
        .where((eb) => eb.or([eb('l.session_id', 'is', null), eb('l.expires_at', '<', dbNow), eb('l.replica_id', '=', runnerId)]))
        .limit(limit)
        .execute();
      return rows.map((r) => r.session_id);
    },
  };
}
