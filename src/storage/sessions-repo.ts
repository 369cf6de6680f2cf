/**
 * @module storage/sessions-repo
 * Session metadata rows. Lists are served from here (an index range scan), never from a
 * directory scan of transcripts.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import { sql } from 'kysely';
import { prepared } from './prepared.js';
import type { Database, SessionsTable } from './schema.js';

export type SessionRow = Selectable<SessionsTable>;

export interface ListSessionsQuery {
  userId: string;
  status?: SessionRow['status'] | undefined;
  project?: string | undefined;
  q?: string | undefined;
  limit: number;
  /** Continue after this (last_active, session_id) position. */
  after?: { lastActive: number; sessionId: string } | undefined;
}

export interface SessionRepository {
  /** Inserts a new session row. */
  insert(row: SessionRow): Promise<void>;
  /** Inserts rows that are not there yet; returns the ids actually inserted. */
  insertMissing(rows: SessionRow[]): Promise<string[]>;
  /** One session, whatever its owner or status. */
  get(sessionId: string): Promise<SessionRow | undefined>;
  /** Of these ids, those of sessions that belong to `userId` (whatever their status). */
  ownedBy(sessionIds: string[], userId: string): Promise<string[]>;
  /** The most recently active session, whoever's (a startup check of the workspace root). */
  latest(): Promise<SessionRow | undefined>;
  /** A user's sessions, newest activity first; deleted ones only when asked by status. */
  list(q: ListSessionsQuery): Promise<SessionRow[]>;
  /** Removes a session row that never ran anything (its creation was refused). */
  remove(sessionId: string): Promise<void>;
  /** Changes the given columns (only `last_active`, the common case of every turn, runs a prepared query). */
  update(sessionId: string, patch: Updateable<SessionsTable>): Promise<void>;
  /**
   * Removes what a session holds of its conversation, in one transaction: its events, turns,
   * permission requests and rules; the row stays as a tombstone
   * (status `deleted`, totals kept) with its prompt, name, tag and options (secrets too) cleared.
   */
  purge(sessionId: string): Promise<void>;
  /** Adds a finished turn's figures to the session's totals. */
  addTurn(sessionId: string, t: { at: number; costUsd: number; inputTokens: number; outputTokens: number; started: boolean }): Promise<void>;
}

export function createSessionRepository(db: Kysely<Database>): SessionRepository {
  // The queries of every turn, compiled once (storage/prepared.ts).
  const getOne = prepared<{ id: string }, SessionRow>(db, ['id'], (p) => db.selectFrom('sessions').selectAll().where('session_id', '=', p.id));
  const touch = prepared<{ id: string; at: number }, never>(db, ['id', 'at'], (p) =>
    db.updateTable('sessions').set({ last_active: p.at }).where('session_id', '=', p.id),
  );
  type AddTurn = { id: string; cost: number; input: number; output: number; at: number };
  const addTurnQuery = (started: boolean) =>
    prepared<AddTurn, never>(db, ['id', 'cost', 'input', 'output', 'at'], (p) =>
      db
        .updateTable('sessions')
        .set((eb) => ({
          turn_count: eb('turn_count', '+', 1),
          total_cost_usd: eb('total_cost_usd', '+', p.cost),
          input_tokens: eb('input_tokens', '+', p.input),
          output_tokens: eb('output_tokens', '+', p.output),
          last_active: p.at,
          ...(started ? { started: 1 } : {}),
        }))
        .where('session_id', '=', p.id),
    );
  const addTurnOnly = addTurnQuery(false);
  const addTurnStarted = addTurnQuery(true);
  return {
    async insert(row) {
      await db.insertInto('sessions').values(row).execute();
    },
    async ownedBy(sessionIds, userId) {
      const owned: string[] = [];
      for (let i = 0; i < sessionIds.length; i += 500) {
        const rows = await db
          .selectFrom('sessions')
          .select('session_id')
          .where('user_id', '=', userId)
          .where('session_id', 'in', sessionIds.slice(i, i + 500))
          .execute();
        owned.push(...rows.map((r) => r.session_id));
      }
      return owned;
    },
    async insertMissing(rows) {
      if (rows.length === 0) return [];
      const inserted: string[] = [];
      await db.transaction().execute(async (tx) => {
        for (const row of rows) {
          const r = await tx
            .insertInto('sessions')
            .values(row)
            .onConflict((oc) => oc.column('session_id').doNothing())
            .executeTakeFirst();
          if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) inserted.push(row.session_id);
        }
      });
      return inserted;
    },
    async latest() {
      return db.selectFrom('sessions').selectAll().where('status', '!=', 'deleted').orderBy('last_active', 'desc').limit(1).executeTakeFirst();
    },
    async get(sessionId) {
      return (await getOne({ id: sessionId })).rows[0];
    },
    async list(q) {
      let query = db.selectFrom('sessions').selectAll().where('user_id', '=', q.userId);
      query = q.status ? query.where('status', '=', q.status) : query.where('status', '!=', 'deleted');
      if (q.project !== undefined) query = query.where('project', '=', q.project);
      if (q.q) {
        const pattern = `%${q.q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
        query = query.where((eb) =>
          eb.or([
            eb(sql`lower(coalesce(session_name, ''))`, 'like', sql`${pattern} escape '\\'`),
            eb(sql`lower(coalesce(first_prompt, ''))`, 'like', sql`${pattern} escape '\\'`),
          ]),
        );
      }
      if (q.after) {
        const { lastActive, sessionId } = q.after;
        query = query.where((eb) =>
          eb.or([eb('last_active', '<', lastActive), eb.and([eb('last_active', '=', lastActive), eb('session_id', '<', sessionId)])]),
        );
      }
      return query.orderBy('last_active', 'desc').orderBy('session_id', 'desc').limit(q.limit).execute();
    },
    async remove(sessionId) {
      await db.deleteFrom('sessions').where('session_id', '=', sessionId).execute();
    },
    async update(sessionId, patch) {
      const keys = Object.keys(patch);
      if (keys.length === 1 && keys[0] === 'last_active' && typeof patch.last_active === 'number') {
        await touch({ id: sessionId, at: patch.last_active });
        return;
      }
      await db.updateTable('sessions').set(patch).where('session_id', '=', sessionId).execute();
    },
    async purge(sessionId) {
      await db.transaction().execute(async (tx) => {
        for (const table of ['events', 'permission_requests', 'session_rules', 'turns'] as const) {
          await tx.deleteFrom(table).where('session_id', '=', sessionId).execute();
        }
        await tx
          .updateTable('sessions')
          .set({ status: 'deleted', session_name: null, first_prompt: null, tag: null, system_prompt: null, options: null, started: 0 })
          .where('session_id', '=', sessionId)
          .execute();
      });
    },
    async addTurn(sessionId, t) {
      await (t.started ? addTurnStarted : addTurnOnly)({ id: sessionId, cost: t.costUsd, input: t.inputTokens, output: t.outputTokens, at: t.at });
    },
  };
}
