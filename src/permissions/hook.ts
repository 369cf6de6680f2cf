/**
 * @module permissions/hook
 * The two ways the CLI asks about a tool call. Our PreToolUse hook answers at once from the
 * policy, an earlier decision or a session rule, or opens a request and answers `defer`: the
 * CLI ends the turn with the call deferred and nothing waits in memory. The CLI's own
 * permission prompt (`canUseTool`, for what the hook let through and the CLI still asks about)
 * is answered from the decision already made, or waits for a person in this process.
 */
import type { PermissionRepository } from '../storage/permissions-repo.js';
import {
  hookAnswerFor,
  needsPerson,
  allowedByRules,
  ruleFor,
  sameCallSuggestion,
  toolAnswerFor,
  DENIED_BY_USER,
  type CanUseToolAnswer,
  type HookAnswer,
  type Suggestion,
} from './policy.js';
import type { Settlements } from './waiters.js';

export interface ToolCall {
  sessionId: string;
  turnId: string;
  toolName: string;
  toolUseId: string;
  input: Record<string, unknown>;
  /** The permission mode the CLI runs in for this call. */
  mode: string | undefined;
}

export interface ToolHooks {
  /** The PreToolUse hook's answer for a tool call. */
  preToolUse(call: ToolCall): Promise<HookAnswer>;
  /** The CLI's own permission prompt (SDK canUseTool). */
  canUseTool(call: ToolCall & { suggestions: unknown[]; signal: AbortSignal }): Promise<CanUseToolAnswer>;
}

export function createToolHooks(d: {
  repo: PermissionRepository;
  settlements: Settlements;
  /** Stores a pending request for the call, arms its expiry and announces it. */
  open(call: ToolCall, suggestions: Suggestion[]): Promise<void>;
  /** The session's `allowed_tools` (its agent options): calls they cover need no person. */
  allowedTools?: ((sessionId: string) => Promise<string[]>) | undefined;
  /** Where WebFetch may go (it fetches from the server, outside the sandbox): a URL it refuses is denied in every mode. */
  fetchAllowed?: ((url: unknown) => boolean) | undefined;
  /** Said to the model with a refused fetch. */
  fetchRefusal?: string | undefined;
}): ToolHooks {
  const { repo } = d;
  /** Whether a rule allowed "for the rest of the session" covers this call. */
  const allowedForSession = async (call: ToolCall, rule: string) =>
    (await repo.rules(call.sessionId)).some((r) => r.tool_name === call.toolName && (r.rule_content === '*' || r.rule_content === rule));

  return {
    async preToolUse(call) {
      if (call.toolName === 'WebFetch' && d.fetchAllowed && !d.fetchAllowed(call.input?.url)) {
        return {
          hookSpecificOutput: {
            hookEventName: 'PreToolUse',
            permissionDecision: 'deny',
            permissionDecisionReason: d.fetchRefusal ?? 'WebFetch may not reach this address on this server.',
          },
        };
      }
      if (!needsPerson(call.mode, call.toolName)) return { continue: true };
      // A rule of the session's `allowed_tools` may cover it: the CLI decides (and asks through canUseTool if not).
      if (d.allowedTools && allowedByRules(await d.allowedTools(call.sessionId), call.toolName)) return { continue: true };
      const earlier = await repo.byToolUse(call.sessionId, call.toolUseId);
      if (earlier && earlier.status !== 'pending') return hookAnswerFor(earlier);
      const rule = ruleFor(call.toolName, call.input);
      if (await allowedForSession(call, rule)) {
        return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', permissionDecisionReason: 'allowed for this session' } };
      }
      if (!earlier) await d.open(call, [sameCallSuggestion(call.toolName, rule)]);
      // The turn ends here with the call deferred; the engine resumes it once it is decided.
      return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'defer', permissionDecisionReason: 'waiting for a person to approve' } };
    },

    async canUseTool(call) {
      const decided = toolAnswerFor(await repo.byToolUse(call.sessionId, call.toolUseId), call.input, call.toolUseId);
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
        await d.open(call, fromSdk.length > 0 ? fromSdk : [sameCallSuggestion(call.toolName, rule)]);
      }
      const aborted = new Promise<'aborted'>((r) => call.signal.addEventListener('abort', () => r('aborted'), { once: true }));
      const how = await Promise.race([d.settlements.settled(call.sessionId, call.toolUseId), aborted]);
      if (how === 'aborted') return { behavior: 'deny', message: 'The turn ended before this tool call was approved.', toolUseID: call.toolUseId };
      return (
        toolAnswerFor(await repo.byToolUse(call.sessionId, call.toolUseId), call.input, call.toolUseId) ?? {
          behavior: 'deny',
          message: DENIED_BY_USER,
          toolUseID: call.toolUseId,
        }
      );
    },
  };
}
