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
import type { EventLog } from '../turns/events.js';
import { ownedSession, type Caller } from '../sessions/access.js';

/** How a deferred tool call was settled. */
export type Settlement = 'allowed' | 'denied' | 'expired';

/** What the PreToolUse hook answers (the SDK's hook output, narrowed). */
export type HookAnswer =
  | { continue: true }
  | { hookSpecificOutput: { hookEventName: 'PreToolUse'; permissionDecision: 'allow' | 'deny' | 'defer'; permissionDecisionReason?: string; updatedInput?: Record<string, unknown> } };

export interface ToolCall {
  sessionId: string;
  turnId: string;
  toolName: string;
  toolUseId: string;
  input: Record<string, unknown>;
  /** The permission mode the CLI runs in for this call. */
  mode: string | undefined;
}

/** A PermissionUpdate of the SDK: the shape suggestions take. */
export interface Suggestion {
  type: 'addRules';
  rules: Array<{ toolName: string; ruleContent?: string }>;
  behavior: 'allow';
  destination: 'session';
}

export interface DecideInput {
  behavior: 'allow' | 'deny';
  scope?: 'once' | 'session' | undefined;
  updated_input?: Record<string, unknown> | undefined;
  message?: string | undefined;
}

/** The SDK's PermissionResult, narrowed. */
export type CanUseToolAnswer =
  | { behavior: 'allow'; updatedInput: Record<string, unknown>; toolUseID: string }
  | { behavior: 'deny'; message: string; toolUseID: string };

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
  list(caller: Caller, sessionId: string): Promise<PermissionRow[]>;
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

/** Tools that never need approval in `default` mode (reading and planning). */
const READ_ONLY = new Set(['Read', 'Glob', 'Grep', 'LS', 'NotebookRead', 'TodoWrite', 'ToolSearch', 'Agent', 'Task', 'ListAgents', 'TaskList', 'TaskGet', 'EnterPlanMode']);
/** Tools that `acceptEdits` mode allows without asking. */
const EDITS = new Set(['Edit', 'Write', 'MultiEdit', 'NotebookEdit']);

/** The rule that allows "the same call" again: a Bash command, a file, or the tool. */
export function ruleFor(toolName: string, input: Record<string, unknown>): string {
  if (toolName === 'Bash' && typeof input.command === 'string') return input.command;
  if (EDITS.has(toolName) && typeof (input.file_path ?? input.notebook_path) === 'string') return String(input.file_path ?? input.notebook_path);
  if (toolName === 'WebFetch' && typeof input.url === 'string') return input.url;
  return '*';
}

export function createApprovals(deps: {
  repo: PermissionRepository;
  sessions: SessionRepository;
  events: EventLog;
  timeoutMs: number;
  log: FastifyBaseLogger;
  /** Told when a request is decided (other replicas may wait for it). */
  onSettled?: (sessionId: string, toolUseId: string) => void;
  /** Where WebFetch may go (it fetches from the server, outside the sandbox): a URL it refuses is denied in every mode. */
  fetchAllowed?: (url: unknown) => boolean;
  /** Said to the model with a refused fetch. */
  fetchRefusal?: string;
}): Approvals {
  const { repo, sessions, events, log } = deps;
  const waiters = new Map<string, Array<(s: Settlement) => void>>();
  const timers = new Map<string, NodeJS.Timeout>();
  const key = (sessionId: string, toolUseId: string) => `${sessionId}\u0000${toolUseId}`;

  function settle(row: PermissionRow) {
    const k = key(row.session_id, row.tool_use_id);
    const ws = waiters.get(k) ?? [];
    waiters.delete(k);
    clearTimeout(timers.get(row.request_id));
    timers.delete(row.request_id);
    const s: Settlement = row.status === 'allowed' ? 'allowed' : row.status === 'expired' ? 'expired' : 'denied';
    for (const w of ws) w(s);
  }

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
    settle(done);
    deps.onSettled?.(row.session_id, row.tool_use_id);
    return done;
  }

  function arm(row: PermissionRow) {
    clearTimeout(timers.get(row.request_id));
    const t = setTimeout(() => {
      timers.delete(row.request_id);
      void expire(row);
    }, Math.max(0, Number(row.expires_at) - Date.now()));
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
        if (now && now.status !== 'pending') settle(now);
      }
    } catch (err) {
      log.error({ err }, 'could not expire a permission request');
    }
  }

  /** Whether a rule allowed "for the rest of the session" covers this call. */
  async function allowedForSession(call: ToolCall, rule: string): Promise<boolean> {
    return (await repo.rules(call.sessionId)).some((r) => r.tool_name === call.toolName && (r.rule_content === '*' || r.rule_content === rule));
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


  return {
    async preToolUse(call) {
      if (call.toolName === 'WebFetch' && deps.fetchAllowed && !deps.fetchAllowed(call.input?.url)) {
        return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: deps.fetchRefusal ?? 'WebFetch may not reach this address on this server.' } };
      }
      const mode = call.mode ?? 'default';
      // Modes in which the CLI never asks a person: let it decide by itself.
      if (mode === 'bypassPermissions' || mode === 'dontAsk' || mode === 'plan') return { continue: true };
      if (READ_ONLY.has(call.toolName)) return { continue: true };
      if (mode === 'acceptEdits' && EDITS.has(call.toolName)) return { continue: true };

      const earlier = await repo.byToolUse(call.sessionId, call.toolUseId);
      if (earlier && earlier.status !== 'pending') {
        if (earlier.status === 'allowed') {
          const updated = earlier.updated_input ? (JSON.parse(earlier.updated_input) as Record<string, unknown>) : undefined;
          return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', ...(updated ? { updatedInput: updated } : {}) } };
        }
        return {
          hookSpecificOutput: {
            hookEventName: 'PreToolUse',
            permissionDecision: 'deny',
            permissionDecisionReason: earlier.message ?? 'The user denied this tool call.',
          },
        };
      }
      const rule = ruleFor(call.toolName, call.input);
      if (await allowedForSession(call, rule)) {
        return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', permissionDecisionReason: 'allowed for this session' } };
      }
      if (!earlier) await open(call, [{ type: 'addRules', rules: [{ toolName: call.toolName, ruleContent: rule }], behavior: 'allow', destination: 'session' }]);
      // The turn ends here with the call deferred; the engine resumes it once it is decided.
      return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'defer', permissionDecisionReason: 'waiting for a person to approve' } };
    },

    async canUseTool(call) {
      const answer = (row: PermissionRow | undefined): CanUseToolAnswer | null => {
        if (!row || row.status === 'pending') return null;
        if (row.status === 'allowed') {
          const updated = row.updated_input ? (JSON.parse(row.updated_input) as Record<string, unknown>) : call.input;
          return { behavior: 'allow', updatedInput: updated, toolUseID: call.toolUseId };
        }
        return { behavior: 'deny', message: row.message ?? 'The user denied this tool call.', toolUseID: call.toolUseId };
      };
      const decided = answer(await repo.byToolUse(call.sessionId, call.toolUseId));
      if (decided) return decided;
      const rule = ruleFor(call.toolName, call.input);
      if (await allowedForSession(call, rule)) {
        return { behavior: 'allow', updatedInput: call.input, toolUseID: call.toolUseId };
      }
      if (!(await repo.byToolUse(call.sessionId, call.toolUseId))) {
        // The SDK's own suggestions, kept to this session (never written to settings files).
        const fromSdk = (call.suggestions as Array<{ type?: string; behavior?: string; rules?: Array<{ toolName: string; ruleContent?: string }> }>)
          .filter((x) => x.type === 'addRules' && x.behavior === 'allow' && Array.isArray(x.rules))
          .map((x): Suggestion => ({ type: 'addRules', rules: x.rules!, behavior: 'allow', destination: 'session' }));
        const suggestions = fromSdk.length > 0 ? fromSdk : [{ type: 'addRules' as const, rules: [{ toolName: call.toolName, ruleContent: rule }], behavior: 'allow' as const, destination: 'session' as const }];
        await open(call, suggestions);
      }
      const aborted = new Promise<'aborted'>((r) => call.signal.addEventListener('abort', () => r('aborted'), { once: true }));
      const how = await Promise.race([this.settled(call.sessionId, call.toolUseId), aborted]);
      if (how === 'aborted') return { behavior: 'deny', message: 'The turn ended before this tool call was approved.', toolUseID: call.toolUseId };
      return answer(await repo.byToolUse(call.sessionId, call.toolUseId)) ?? { behavior: 'deny', message: 'The user denied this tool call.', toolUseID: call.toolUseId };
    },

    async settled(sessionId, toolUseId) {
      const k = key(sessionId, toolUseId);
      const p = new Promise<Settlement>((res) => {
        const list = waiters.get(k) ?? [];
        list.push(res);
        waiters.set(k, list);
      });
      const row = await repo.byToolUse(sessionId, toolUseId);
      if (!row) {
        // No request (the hook let it through): nothing to wait for.
        settle({ session_id: sessionId, tool_use_id: toolUseId, status: 'allowed', request_id: '' } as PermissionRow);
      } else if (row.status !== 'pending') settle(row);
      return p;
    },

    async list(caller, sessionId) {
      await ownedSession(sessions, caller, sessionId);
      return repo.pending(sessionId);
    },

    async decide(caller, sessionId, requestId, d) {
      await ownedSession(sessions, caller, sessionId);
      const row = await repo.get(requestId);
      if (!row || row.session_id !== sessionId) throw new AppError('PERMISSION_REQUEST_NOT_FOUND', `no permission request ${requestId} in session ${sessionId}`);
      if (row.status !== 'pending') throw new AppError('PERMISSION_ALREADY_DECIDED', `permission request ${requestId} is already ${row.status}`);
      if (d.behavior === 'deny' && (d.updated_input !== undefined || d.scope === 'session')) {
        throw new AppError('INVALID_REQUEST', 'updated_input and scope "session" go with behavior "allow"');
      }
      const now = Date.now();
      const done = await resolve(row, {
        status: d.behavior === 'allow' ? 'allowed' : 'denied',
        scope: d.scope ?? 'once',
        updated_input: d.updated_input ? JSON.stringify(d.updated_input) : null,
        message: d.message ?? (d.behavior === 'deny' ? 'The user denied this tool call.' : null),
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
        await repo.override(row.request_id, { status: 'denied', message: 'The turn was interrupted before this tool call ran.', decided_by: by, decided_at: Date.now() });
      }
    },

    async denyPending(sessionId, by) {
      let n = 0;
      for (const row of await repo.pending(sessionId)) {
        if (await resolve(row, { status: 'denied', scope: null, updated_input: null, message: 'The turn was interrupted before this tool call was approved.', decided_by: by, decided_at: Date.now() })) n++;
      }
      return n;
    },

    async adopt(sessionId) {
      const rows = await repo.pending(sessionId);
      for (const r of rows) arm(r);
      return rows;
    },

    async recheck(sessionId, toolUseId) {
      if (!waiters.has(key(sessionId, toolUseId))) return;
      const row = await repo.byToolUse(sessionId, toolUseId);
      if (row && row.status !== 'pending') settle(row);
    },

    async recheckAll() {
      for (const k of [...waiters.keys()]) {
        const [sessionId, toolUseId] = k.split('\u0000') as [string, string];
        const row = await repo.byToolUse(sessionId, toolUseId);
        if (!row || row.status !== 'pending') settle(row ?? ({ session_id: sessionId, tool_use_id: toolUseId, status: 'denied', request_id: '' } as PermissionRow));
      }
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

/** A request as the API and the `permission_request` event show it. */
export function presentRequest(row: PermissionRow) {
  return {
    request_id: row.request_id,
    session_id: row.session_id,
    turn_id: row.turn_id,
    tool_name: row.tool_name,
    tool_use_id: row.tool_use_id,
    input: JSON.parse(row.input) as Record<string, unknown>,
    suggestions: JSON.parse(row.suggestions) as unknown[],
    status: row.status,
    scope: row.scope,
    decided_by: row.decided_by,
    created_at: new Date(Number(row.created_at)).toISOString(),
    expires_at: new Date(Number(row.expires_at)).toISOString(),
  };
}
