/**
 * @module storage/turns-repo
 * Turn rows. The partial unique index `turns_one_running_per_session` makes "one running
 * turn per session" a property of the database, not of one process's memory.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import type { Database, TurnsTable } from './schema.js';
import { isUniqueViolation } from './db.js';

export type TurnRow = Selectable<TurnsTable>;
export type NewTurn = Omit<TurnRow, 'seq'>;

export interface TurnRepository {
  /**
   * Inserts a turn with the next sequence number of its session. Returns false when the
   * database refuses it because the session already has a running turn.
   */
  insert(turn: NewTurn): Promise<TurnRow | false>;
  get(turnId: string): Promise<TurnRow | undefined>;
  /** Turns of a session in order, optionally of one status, after a sequence number. */
  listBySession(sessionId: string, opts: { status?: TurnRow['status'] | undefined; limit: number; afterSeq?: number | undefined }): Promise<TurnRow[]>;
  update(turnId: string, patch: Updateable<TurnsTable>): Promise<void>;
  /** The running turn id of each of the given sessions that has one. */
  runningBySession(sessionIds: string[]): Promise<Map<string, string>>;
  /** Marks every turn left running or queued (by a process that died) as failed; returns how many. */
  failAbandoned(at: number, code: string, message: string): Promise<number>;
}

export function createTurnRepository(db: Kysely<Database>): TurnRepository {
  return {
    async insert(turn) {
      for (let attempt = 0; ; attempt++) {
        try {
          const last = await db.selectFrom('turns').select((eb) => eb.fn.max('seq').as('m')).where('session_id', '=', turn.session_id).executeTakeFirst();
          const row: TurnRow = { ...turn, seq: Number(last?.m ?? 0) + 1 };
          await db.insertInto('turns').values(row).execute();
          return row;
        } catch (err) {
          if (!isUniqueViolation(err)) throw err;
          // Either another running turn (busy) or a sequence number taken by a concurrent insert.
          const running = await db.selectFrom('turns').select('turn_id').where('session_id', '=', turn.session_id).where('status', '=', 'running').executeTakeFirst();
          if ((running && turn.status === 'running') || attempt >= 5) return false;
        }
      }
    },
    async get(turnId) {
      return db.selectFrom('turns').selectAll().where('turn_id', '=', turnId).executeTakeFirst();
    },
    async listBySession(sessionId, opts) {
      let q = db.selectFrom('turns').selectAll().where('session_id', '=', sessionId);
      if (opts.status) q = q.where('status', '=', opts.status);
      if (opts.afterSeq !== undefined) q = q.where('seq', '>', opts.afterSeq);
      return q.orderBy('seq', 'asc').limit(opts.limit).execute();
    },
    async update(turnId, patch) {
      await db.updateTable('turns').set(patch).where('turn_id', '=', turnId).execute();
    },
    async runningBySession(sessionIds) {
      if (sessionIds.length === 0) return new Map();
      const rows = await db.selectFrom('turns').select(['session_id', 'turn_id']).where('session_id', 'in', sessionIds).where('status', '=', 'running').execute();
      return new Map(rows.map((r) => [r.session_id, r.turn_id]));
    },
    async failAbandoned(at, code, message) {
      const r = await db
        .updateTable('turns')
        .set({ status: 'failed', error_code: code, error_message: message, finished_at: at })
        .where('status', 'in', ['running', 'queued'])
        .executeTakeFirst();
      return Number(r.numUpdatedRows);
    },
  };
}
