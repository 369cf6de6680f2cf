/**
 * @module storage/agents-repo
 * Agents and their versions. A version is written once and never changed; an agent row names
 * its newest version. Secret values are in the version's config: the service never returns them.
 */
import type { Kysely, Selectable } from 'kysely';
import type { AgentsTable, AgentVersionsTable, Database } from './schema.js';

export type AgentRow = Selectable<AgentsTable>;
export type AgentVersionRow = Selectable<AgentVersionsTable>;

export interface AgentRepository {
  /** A new agent and its version 1, in one transaction. */
  create(agent: AgentRow, first: AgentVersionRow): Promise<void>;
  get(agentId: string): Promise<AgentRow | undefined>;
  version(agentId: string, version: number): Promise<AgentVersionRow | undefined>;
  /** Versions of an agent, newest first, before `before` (a version number) when given. */
  versions(agentId: string, limit: number, before?: number): Promise<AgentVersionRow[]>;
  /**
   * Adds version `latest + 1` if the agent's newest version is still `latest` (false: another
   * update came first, nothing written).
   */
  addVersion(agentId: string, latest: number, next: AgentVersionRow, at: number): Promise<boolean>;
  /** Archives (at) or restores (null). */
  setArchived(agentId: string, at: number | null): Promise<void>;
  /**
   * Agents a user may see: their own and the shared ones (only their own with `ownOnly`), newest
   * change first, paged by (updated_at, agent_id).
   */
  list(q: { userId: string; ownOnly: boolean; archived: boolean; limit: number; after?: { at: number; id: string } | undefined }): Promise<AgentRow[]>;
}

export function createAgentRepository(db: Kysely<Database>): AgentRepository {
  return {
    async create(agent, first) {
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('agents').values(agent).execute();
        await tx.insertInto('agent_versions').values(first).execute();
      });
    },
    async get(agentId) {
      return db.selectFrom('agents').selectAll().where('agent_id', '=', agentId).executeTakeFirst();
    },
    async version(agentId, version) {
      return db.selectFrom('agent_versions').selectAll().where('agent_id', '=', agentId).where('version', '=', version).executeTakeFirst();
    },
    async versions(agentId, limit, before) {
      let q = db.selectFrom('agent_versions').selectAll().where('agent_id', '=', agentId);
      if (before !== undefined) q = q.where('version', '<', before);
      return q.orderBy('version', 'desc').limit(limit).execute();
    },
    async addVersion(agentId, latest, next, at) {
      return db.transaction().execute(async (tx) => {
        const moved = await tx
          .updateTable('agents')
          .set({ latest_version: next.version, name: next.name, updated_at: at })
          .where('agent_id', '=', agentId)
          .where('latest_version', '=', latest)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) return false;
        await tx.insertInto('agent_versions').values(next).execute();
        return true;
      });
    },
    async setArchived(agentId, at) {
      await db.updateTable('agents').set({ archived_at: at }).where('agent_id', '=', agentId).execute();
    },
    async list(q) {
      let query = db.selectFrom('agents').selectAll();
      query = q.ownOnly ? query.where('user_id', '=', q.userId) : query.where((eb) => eb.or([eb('user_id', '=', q.userId), eb('shared', '=', 1)]));
      query = q.archived ? query.where('archived_at', 'is not', null) : query.where('archived_at', 'is', null);
      if (q.after) {
        const { at, id } = q.after;
        query = query.where((eb) => eb.or([eb('updated_at', '<', at), eb.and([eb('updated_at', '=', at), eb('agent_id', '<', id)])]));
      }
      return query.orderBy('updated_at', 'desc').orderBy('agent_id', 'desc').limit(q.limit).execute();
    },
  };
}
