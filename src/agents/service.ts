/**
 * @module agents/service
 * Agents: named, versioned configurations sessions start from. An agent belongs to a user like a
 * session does (404 for anyone else's); an admin may make one shared, which every user can read
 * and use but only admins change. Every change is a new version; a session keeps the version it
 * was made with. Secret values are written, used, and never shown.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.js';
import { monotonicNow } from '../clock.js';
import type { Caller } from '../auth/access.js';
import type { AgentRepository, AgentRow, AgentVersionRow } from '../storage/agents-repo.js';
import type { AgentOptions, AgentOptionsInput, PermissionMode } from '../schemas.js';
import { AGENT_OPTION_KEYS } from '../schemas.js';
import { decodeCursor, encodeCursor } from '../storage/cursor.js';
import { applyOptions, checkOptions, viewOptions, type OptionsPolicy } from './options.js';
import type { Agent, CreateAgentBody, ListAgentsQuery, UpdateAgentBody } from './schemas.js';

/** What a session takes from an agent version. */
export interface AgentChoice {
  agentId: string;
  version: number;
  model: string | null;
  permissionMode: PermissionMode | null;
  options: AgentOptions;
  /** Whether the session's owner may change the agent (else its overrides are limited: agents/options checkOverrides). */
  mayChange: boolean;
}

export interface AgentService {
  create(caller: Caller, body: CreateAgentBody): Promise<Agent>;
  list(caller: Caller, q: ListAgentsQuery): Promise<{ agents: Agent[]; next_cursor: string | null }>;
  get(caller: Caller, agentId: string, version?: number): Promise<Agent>;
  versions(caller: Caller, agentId: string, page: { limit: number; cursor?: string | undefined }): Promise<{ versions: Agent[]; next_cursor: string | null }>;
  update(caller: Caller, agentId: string, body: UpdateAgentBody): Promise<Agent>;
  archive(caller: Caller, agentId: string): Promise<Agent>;
  restore(caller: Caller, agentId: string): Promise<Agent>;
  /** The version a new session of `owner` starts from (the newest when none is named); refuses an archived agent. */
  choose(caller: Caller, owner: string, agentId: string, version?: number): Promise<AgentChoice>;
  /** Checks a session's own options against the operator's policy (the same checks as an agent's). */
  check(o: AgentOptionsInput, at: string): Promise<void>;
}

/** A version's stored config: the options plus the agent's model and mode. */
interface StoredConfig extends AgentOptions {
  model?: string;
  permission_mode?: PermissionMode;
}

const iso = (ms: number) => new Date(Number(ms)).toISOString();

/** Only the option fields of a body (name, description and the rest are the agent's own). */
function optionFields(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([k]) => (AGENT_OPTION_KEYS as string[]).includes(k)));
}

function splitConfig(config: string): { model: string | null; permissionMode: PermissionMode | null; options: AgentOptions } {
  const { model, permission_mode, ...options } = JSON.parse(config) as StoredConfig;
  return { model: model ?? null, permissionMode: permission_mode ?? null, options };
}

export function createAgentService(deps: { repo: AgentRepository; policy: OptionsPolicy }): AgentService {
  const { repo, policy } = deps;

  const notFound = (agentId: string) => new AppError('AGENT_NOT_FOUND', `no agent ${agentId}`);
  const mayRead = (caller: Caller, a: AgentRow) => a.user_id === caller.userId || a.shared === 1 || caller.admin;
  const mayChange = (caller: Caller, a: AgentRow) => (a.user_id === caller.userId && a.shared === 0) || caller.admin;

  async function readable(caller: Caller, agentId: string): Promise<AgentRow> {
    const a = await repo.get(agentId);
    if (!a || !mayRead(caller, a)) throw notFound(agentId);
    return a;
  }
  async function changeable(caller: Caller, agentId: string): Promise<AgentRow> {
    const a = await readable(caller, agentId);
    if (!mayChange(caller, a)) throw new AppError('AGENT_NOT_FOUND', `agent ${agentId} is shared: only an admin may change it`);
    return a;
  }
  async function versionOf(a: AgentRow, version: number): Promise<AgentVersionRow> {
    const v = await repo.version(a.agent_id, version);
    if (!v) throw new AppError('AGENT_NOT_FOUND', `agent ${a.agent_id} has no version ${version} (its newest is ${a.latest_version})`);
    return v;
  }

  function present(a: AgentRow, v: AgentVersionRow): Agent {
    const { model, permissionMode, options } = splitConfig(v.config);
    return {
      agent_id: a.agent_id,
      version: Number(v.version),
      latest_version: Number(a.latest_version),
      name: v.name,
      description: v.description,
      user_id: a.user_id,
      shared: a.shared === 1,
      archived: a.archived_at !== null,
      created_at: iso(a.created_at),
      version_created_at: iso(v.created_at),
      model,
      permission_mode: permissionMode,
      ...viewOptions(options),
    };
  }

  async function latest(a: AgentRow): Promise<Agent> {
    return present(a, await versionOf(a, Number(a.latest_version)));
  }

  return {
    async create(caller, body) {
      if (body.shared && !caller.admin) throw new AppError('INVALID_REQUEST', 'shared may only be set by an admin', { details: { field: 'body.shared' } });
      const input = optionFields(body) as AgentOptionsInput;
      await checkOptions(input, policy);
      const options = applyOptions(null, input, { mergeMaps: false });
      const now = monotonicNow();
      const agent: AgentRow = {
        agent_id: randomUUID(),
        user_id: caller.userId,
        shared: body.shared ? 1 : 0,
        name: body.name,
        latest_version: 1,
        archived_at: null,
        created_at: now,
        updated_at: now,
      };
      const config: StoredConfig = {
        ...options,
        ...(body.model ? { model: body.model } : {}),
        ...(body.permission_mode ? { permission_mode: body.permission_mode } : {}),
      };
      const first: AgentVersionRow = {
        agent_id: agent.agent_id,
        version: 1,
        name: body.name,
        description: body.description ?? null,
        config: JSON.stringify(config),
        created_by: caller.userId,
        created_at: now,
      };
      await repo.create(agent, first);
      return present(agent, first);
    },

    async list(caller, q) {
      const rows = await repo.list({
        userId: caller.userId,
        ownOnly: q.mine,
        archived: q.archived,
        limit: q.limit + 1,
        after: q.cursor ? decodeCursor(q.cursor) : undefined,
      });
      const page = rows.slice(0, q.limit);
      const last = page.at(-1);
      return { agents: await Promise.all(page.map(latest)), next_cursor: rows.length > q.limit && last ? encodeCursor(last.updated_at, last.agent_id) : null };
    },

    async get(caller, agentId, version) {
      const a = await readable(caller, agentId);
      return present(a, await versionOf(a, version ?? Number(a.latest_version)));
    },

    async versions(caller, agentId, page) {
      const a = await readable(caller, agentId);
      const rows = await repo.versions(agentId, page.limit + 1, page.cursor ? Number(page.cursor) : undefined);
      const shown = rows.slice(0, page.limit);
      return { versions: shown.map((v) => present(a, v)), next_cursor: rows.length > page.limit ? String(shown[shown.length - 1]!.version) : null };
    },

    async update(caller, agentId, body) {
      const a = await changeable(caller, agentId);
      const newest = Number(a.latest_version);
      if (body.expected_version !== undefined && body.expected_version !== newest) {
        throw new AppError(
          'AGENT_CHANGED',
          `agent ${agentId} is at version ${newest}, not ${body.expected_version}; read it again and apply your change to it`,
        );
      }
      const before = await versionOf(a, newest);
      const prev = splitConfig(before.config);
      const input = optionFields(body) as AgentOptionsInput;
      await checkOptions(Object.fromEntries(Object.entries(input).filter(([, v]) => v !== null)) as AgentOptionsInput, policy);
      const options = applyOptions(prev.options, input, { mergeMaps: false });
      const model = body.model === undefined ? prev.model : body.model;
      const mode = body.permission_mode === undefined ? prev.permissionMode : body.permission_mode;
      const config: StoredConfig = { ...options, ...(model ? { model } : {}), ...(mode ? { permission_mode: mode } : {}) };
      const now = monotonicNow();
      const next: AgentVersionRow = {
        agent_id: agentId,
        version: newest + 1,
        name: body.name ?? before.name,
        description: body.description === undefined ? before.description : body.description,
        config: JSON.stringify(config),
        created_by: caller.userId,
        created_at: now,
      };
      if (!(await repo.addVersion(agentId, newest, next, now))) {
        throw new AppError('AGENT_CHANGED', `agent ${agentId} was changed by another request meanwhile; read it again and apply your change to it`);
      }
      return present({ ...a, latest_version: next.version, name: next.name, updated_at: now }, next);
    },

    async archive(caller, agentId) {
      const a = await changeable(caller, agentId);
      const at = a.archived_at ?? monotonicNow();
      if (a.archived_at === null) await repo.setArchived(agentId, at);
      return latest({ ...a, archived_at: at });
    },

    async restore(caller, agentId) {
      const a = await changeable(caller, agentId);
      if (a.archived_at !== null) await repo.setArchived(agentId, null);
      return latest({ ...a, archived_at: null });
    },

    async choose(caller, owner, agentId, version) {
      const a = await repo.get(agentId);
      // Readable by the session's owner (an admin making a session for a user uses an agent that user may use).
      if (!a || !(a.user_id === owner || a.shared === 1 || (caller.admin && a.user_id === caller.userId))) throw notFound(agentId);
      if (a.archived_at !== null) {
        throw new AppError('INVALID_REQUEST', `agent ${agentId} is archived: it starts no new sessions (restore it first)`, {
          details: { field: 'body.agent_id' },
        });
      }
      const mayChange = (a.user_id === owner && a.shared === 0) || caller.admin;
      // An old version of an agent one may not change is not one to start from: its owner replaced it
      // (a rotated secret, a server or tool taken away).
      if (version !== undefined && version !== Number(a.latest_version) && !mayChange) {
        throw new AppError('INVALID_REQUEST', `agent ${agentId} is shared: only its newest version (${a.latest_version}) starts sessions`, {
          details: { field: 'body.agent_version' },
        });
      }
      const v = await versionOf(a, version ?? Number(a.latest_version));
      const { model, permissionMode, options } = splitConfig(v.config);
      return { agentId, version: Number(v.version), model, permissionMode, options, mayChange };
    },

    check(o, at) {
      return checkOptions(o, policy, at);
    },
  };
}
