/**
 * @module permissions/service
 * Tool approvals by people, over HTTP. When the CLI is about to run a tool that needs approval,
 * our PreToolUse hook stores a permission request, announces it (`permission_request` event)
 * and answers `defer`: the CLI ends the turn with the tool call deferred, and nothing waits in
 * memory. Once someone decides (or the request expires), the turn engine resumes the session
 * and the CLI runs the deferred call through the hook again, which now answers with the
 * decision. Because the request and the transcript are both stored, a pending approval
 * survives a restart of the server and can be decided afterwards.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import { monotonicNow } from '../clock.js';
import type { PermissionRepository, PermissionRow } from '../storage/permissions-repo.js';
import type { SessionRepository } from '../storage/sessions-repo.js';
import type { EventLog } from '../events/log.js';
import type { Cluster } from '../cluster/cluster.js';
import { ownedSession, type Caller } from '../auth/access.js';
import type { DecideInput } from './schemas.js';
import { DENIED_BY_USER, presentRequest, type CanUseToolAnswer, type HookAnswer, type Suggestion } from './policy.js';
import { createSettlements, type Settlement } from './waiters.js';
import { createToolHooks, type ToolCall } from './hook.js';

export type { ToolCall } from './hook.js';
export type { Settlement } from './waiters.js';

export interface Approvals {
  /** The PreToolUse hook's answer for a tool call. */
  preToolUse(call: ToolCall): Promise<HookAnswer>;
  /**
   * The CLI's own permission prompt (SDK canUseTool) for a call the hook let through or
   * allowed, when the CLI still asks (a path outside the session's folder, say): answered from
   * the decision already made, or by a person, waiting in this process.
   */
  canUseTool(call: ToolCall & { suggestions: unknown[]; signal: AbortSignal }): Promise<CanUseToolAnswer>;
  /** Resolves once the request for a deferred tool call is settled (at once if it already is). */
  settled(sessionId: string, toolUseId: string): Promise<Settlement>;
  /** Pending requests of a session the caller may see. */
  /** Pending requests, oldest first; with `all`, the newest `limit` requests whatever their status, newest first. */
  list(caller: Caller, sessionId: string, q?: { status: 'pending' | 'all'; limit: number }): Promise<PermissionRow[]>;
  /** Decides a pending request (409 if it is not pending any more). */
  decide(caller: Caller, sessionId: string, requestId: string, d: DecideInput): Promise<PermissionRow>;
  /** Turns an allowed, not yet run, tool call into a denied one (its turn was interrupted). */
  revoke(sessionId: string, toolUseId: string, by: string): Promise<void>;
  /** Denies every pending request of a session (the turn was interrupted); returns how many. */
  denyPending(sessionId: string, by: string): Promise<number>;
  /** Takes charge of a session's pending requests (their replica is gone): arms their expiry; returns them. */
  adopt(sessionId: string): Promise<PermissionRow[]>;
  /** Another replica decided the request for this tool call: what waits for it here reads it. */
  recheck(sessionId: string, toolUseId: string): Promise<void>;
  /** Everything waiting here for a decision reads its request again (a notice may have been lost). */
  recheckAll(): Promise<void>;
  /** Re-arms the expiry of requests left pending by an earlier run; returns them. */
  start(): Promise<PermissionRow[]>;
  stop(): void;
}

export function createApprovals(deps: {
  repo: PermissionRepository;
  sessions: SessionRepository;
  events: EventLog;
  timeoutMs: number;
  log: FastifyBaseLogger;
  /** Other replicas are told of decisions (a turn may wait for one there), and tell this one of theirs. */
  cluster: Pick<Cluster, 'publish' | 'onMessage'>;
  /** Where WebFetch may go (it fetches from the server, outside the sandbox): a URL it refuses is denied in every mode. */
  fetchAllowed?: (url: unknown) => boolean;
  /** Said to the model with a refused fetch. */
  fetchRefusal?: string;
}): Approvals {
  const { repo, sessions, events, log } = deps;
  const timers = new Map<string, NodeJS.Timeout>();
  const settlements = createSettlements(repo, (requestId) => {
    clearTimeout(timers.get(requestId));
    timers.delete(requestId);
  });
  // Decided on another replica: what waits for it here reads it.
  deps.cluster.onMessage((m) => {
    if (m.k === 'settled') void settlements.recheck(m.s, m.tu).catch((err: unknown) => log.warn({ err }, 'could not read a decided permission request'));
  });

  async function resolve(row: PermissionRow, d: Parameters<PermissionRepository['decide']>[1]): Promise<PermissionRow | null> {
    if (!(await repo.decide(row.request_id, d))) return null;
    const done: PermissionRow = { ...row, ...d };
    await events.append(row.session_id, row.turn_id, 'permission_resolved', {
      request_id: row.request_id,
      behavior: d.status === 'allowed' ? 'allow' : 'deny',
      by: d.decided_by,
      scope: d.scope,
      status: d.status,
    });
    settlements.settle(done);
    deps.cluster.publish({ k: 'settled', s: row.session_id, tu: row.tool_use_id });
    return done;
  }

  function arm(row: PermissionRow) {
    clearTimeout(timers.get(row.request_id));
    const t = setTimeout(
      () => {
        timers.delete(row.request_id);
        void expire(row);
      },
      Math.max(0, Number(row.expires_at) - Date.now()),
    );
    t.unref();
    timers.set(row.request_id, t);
  }

  /** Expires a request; decided meanwhile (perhaps elsewhere), what waits for it here reads the decision. */
  async function expire(row: PermissionRow) {
    try {
      const done = await resolve(row, {
        status: 'expired',
        scope: null,
        updated_input: null,
        message: `No one answered this permission request within ${deps.timeoutMs} ms.`,
        decided_by: 'timeout',
        decided_at: Date.now(),
      });
      if (!done) {
        const now = await repo.get(row.request_id);
        if (now && now.status !== 'pending') settlements.settle(now);
      }
    } catch (err) {
      log.error({ err }, 'could not expire a permission request');
    }
  }

  /** Stores a pending request for a tool call, arms its expiry and announces it. */
  async function open(call: ToolCall, suggestions: Suggestion[]): Promise<void> {
    const now = monotonicNow();
    const row: PermissionRow = {
      request_id: randomUUID(),
      session_id: call.sessionId,
      turn_id: call.turnId,
      user_id: (await sessions.get(call.sessionId))?.user_id ?? '',
      tool_use_id: call.toolUseId,
      tool_name: call.toolName,
      input: JSON.stringify(call.input ?? {}),
      suggestions: JSON.stringify(suggestions),
      status: 'pending',
      scope: null,
      updated_input: null,
      message: null,
      decided_by: null,
      created_at: now,
      expires_at: now + deps.timeoutMs,
      decided_at: null,
    };
    await repo.insert(row);
    arm(row);
    await events.append(call.sessionId, call.turnId, 'permission_request', presentRequest(row));
  }

  // The tools a session's options let run without asking (SDK allowedTools): the hook lets them through to the CLI, which applies them.
  const allowedTools = async (sessionId: string): Promise<string[]> => {
    const row = await sessions.get(sessionId);
    return row?.options ? ((JSON.parse(row.options) as { allowed_tools?: string[] }).allowed_tools ?? []) : [];
  };
  const hooks = createToolHooks({ repo, settlements, open, allowedTools, fetchAllowed: deps.fetchAllowed, fetchRefusal: deps.fetchRefusal });

  return {
    preToolUse: (call) => hooks.preToolUse(call),
    canUseTool: (call) => hooks.canUseTool(call),
    settled: (sessionId, toolUseId) => settlements.settled(sessionId, toolUseId),
    recheck: (sessionId, toolUseId) => settlements.recheck(sessionId, toolUseId),
    recheckAll: () => settlements.recheckAll(),

    async list(caller, sessionId, q) {
      await ownedSession(sessions, caller, sessionId);
      return q?.status === 'all' ? repo.recent(sessionId, q.limit) : repo.pending(sessionId);
    },

    async decide(caller, sessionId, requestId, d) {
      await ownedSession(sessions, caller, sessionId);
      const row = await repo.get(requestId);
      if (!row || row.session_id !== sessionId)
        throw new AppError('PERMISSION_REQUEST_NOT_FOUND', `no permission request ${requestId} in session ${sessionId}`);
      if (row.status !== 'pending') throw new AppError('PERMISSION_ALREADY_DECIDED', `permission request ${requestId} is already ${row.status}`);
      if (d.behavior === 'deny' && (d.updated_input !== undefined || d.scope === 'session')) {
        throw new AppError('INVALID_REQUEST', 'updated_input and scope "session" go with behavior "allow"');
      }
      const now = Date.now();
      const done = await resolve(row, {
        status: d.behavior === 'allow' ? 'allowed' : 'denied',
        scope: d.scope ?? 'once',
        updated_input: d.updated_input ? JSON.stringify(d.updated_input) : null,
        message: d.message ?? (d.behavior === 'deny' ? DENIED_BY_USER : null),
        decided_by: caller.userId,
        decided_at: now,
      });
      if (!done) throw new AppError('PERMISSION_ALREADY_DECIDED', `permission request ${requestId} was decided meanwhile`);
      if (d.behavior === 'allow' && d.scope === 'session') {
        for (const s of JSON.parse(row.suggestions) as Suggestion[]) {
          for (const r of s.rules) await repo.addRule(sessionId, r.toolName, r.ruleContent ?? '*', now);
        }
      }
      return done;
    },

    async revoke(sessionId, toolUseId, by) {
      const row = await repo.byToolUse(sessionId, toolUseId);
      if (row && row.status === 'allowed') {
        await repo.override(row.request_id, {
          status: 'denied',
          message: 'The turn was interrupted before this tool call ran.',
          decided_by: by,
          decided_at: Date.now(),
        });
      }
    },

    async denyPending(sessionId, by) {
      let n = 0;
      for (const row of await repo.pending(sessionId)) {
        if (
          await resolve(row, {
            status: 'denied',
            scope: null,
            updated_input: null,
            message: 'The turn was interrupted before this tool call was approved.',
            decided_by: by,
            decided_at: Date.now(),
          })
        )
          n++;
      }
      return n;
    },

    async adopt(sessionId) {
      const rows = await repo.pending(sessionId);
      for (const r of rows) arm(r);
      return rows;
    },

    async start() {
      const rows = await repo.allPending();
      for (const r of rows) arm(r);
      return rows;
    },

    stop() {
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
    },
  };
}
