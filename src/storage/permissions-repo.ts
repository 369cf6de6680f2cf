/**
 * @module storage/permissions-repo
 * Tool-permission requests and the rules a user allowed for the rest of a session. A decision
 * is a conditional update (only a pending request can be decided), so two deciders cannot
 * both win.
 */
import type { Kysely, Selectable } from 'kysely';
import type { Database, PermissionRequestsTable } from './schema.js';

export type PermissionRow = Selectable<PermissionRequestsTable>;

export interface PermissionRepository {
  insert(row: PermissionRow): Promise<void>;
  get(requestId: string): Promise<PermissionRow | undefined>;
  /** The request made for one tool call of a session. */
  byToolUse(sessionId: string, toolUseId: string): Promise<PermissionRow | undefined>;
  pending(sessionId: string): Promise<PermissionRow[]>;
  /** The session's newest requests, whatever their status, newest first. */
  recent(sessionId: string, limit: number): Promise<PermissionRow[]>;
  /** Every pending request (to re-arm expiry after a restart). */
  allPending(): Promise<PermissionRow[]>;
  /** Decides a pending request; false when it was no longer pending. */
  decide(requestId: string, d: Pick<PermissionRow, 'status' | 'scope' | 'updated_input' | 'message' | 'decided_by' | 'decided_at'>): Promise<boolean>;
  /** Replaces the decision of a request that was allowed but whose call never ran. */
  override(requestId: string, d: Pick<PermissionRow, 'status' | 'message' | 'decided_by' | 'decided_at'>): Promise<void>;
  addRule(sessionId: string, toolName: string, ruleContent: string, at: number): Promise<void>;
  rules(sessionId: string): Promise<Array<{ tool_name: string; rule_content: string }>>;
}

export function createPermissionRepository(db: Kysely<Database>): PermissionRepository {
  return {
    async insert(row) {
      await db.insertInto('permission_requests').values(row).execute();
    },
    async get(requestId) {
      return db.selectFrom('permission_requests').selectAll().where('request_id', '=', requestId).executeTakeFirst();
    },
    async byToolUse(sessionId, toolUseId) {
      return db
        .selectFrom('permission_requests')
        .selectAll()
        .where('session_id', '=', sessionId)
        .where('tool_use_id', '=', toolUseId)
        .orderBy('created_at', 'desc')
        .executeTakeFirst();
    },
    async pending(sessionId) {
      return db
        .selectFrom('permission_requests')
        .selectAll()
        .where('session_id', '=', sessionId)
        .where('status', '=', 'pending')
        .orderBy('created_at', 'asc')
        .execute();
    },
    async recent(sessionId, limit) {
      return db
        .selectFrom('permission_requests')
        .selectAll()
        .where('session_id', '=', sessionId)
        .orderBy('created_at', 'desc')
        .orderBy('request_id', 'desc')
        .limit(limit)
        .execute();
    },
    async allPending() {
      return db.selectFrom('permission_requests').selectAll().where('status', '=', 'pending').execute();
    },
    async decide(requestId, d) {
      const r = await db.updateTable('permission_requests').set(d).where('request_id', '=', requestId).where('status', '=', 'pending').executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async override(requestId, d) {
      await db.updateTable('permission_requests').set(d).where('request_id', '=', requestId).where('status', '=', 'allowed').execute();
    },
    async addRule(sessionId, toolName, ruleContent, at) {
      await db
        .insertInto('session_rules')
        .values({ session_id: sessionId, tool_name: toolName, rule_content: ruleContent, created_at: at })
        .onConflict((oc) => oc.columns(['session_id', 'tool_name', 'rule_content']).doNothing())
        .execute();
    },
    async rules(sessionId) {
      return db.selectFrom('session_rules').select(['tool_name', 'rule_content']).where('session_id', '=', sessionId).execute();
    },
  };
}
