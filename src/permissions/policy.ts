/**
 * @module permissions/policy
 * Which tool calls need a person, what "the same call again" means, and the answers the CLI is
 * given once a request is decided. Pure: no storage, no waiting.
 */
import type { PermissionRow } from '../storage/permissions-repo.js';
import type { PermissionRequest } from './schemas.js';

/** What the PreToolUse hook answers (the SDK's hook output, narrowed). */
export type HookAnswer =
  | { continue: true }
  | {
      hookSpecificOutput: {
        hookEventName: 'PreToolUse';
        permissionDecision: 'allow' | 'deny' | 'defer';
        permissionDecisionReason?: string;
        updatedInput?: Record<string, unknown>;
      };
    };

/** The SDK's PermissionResult, narrowed. */
export type CanUseToolAnswer =
  { behavior: 'allow'; updatedInput: Record<string, unknown>; toolUseID: string } | { behavior: 'deny'; message: string; toolUseID: string };

/** A PermissionUpdate of the SDK: the shape suggestions take. */
export interface Suggestion {
  type: 'addRules';
  rules: Array<{ toolName: string; ruleContent?: string }>;
  behavior: 'allow';
  destination: 'session';
}

/** Tools that read and plan, and the answer of a turn with an output schema: they change nothing. */
export const READING_TOOLS = [
  'StructuredOutput',
  'Read',
  'Glob',
  'Grep',
  'LS',
  'NotebookRead',
  'TodoWrite',
  'ToolSearch',
  'ListAgents',
  'TaskList',
  'TaskGet',
  'EnterPlanMode',
] as const;
/** Tools that never need approval in `default` mode: reading and planning, and subagents (whose own calls are asked about). */
const READ_ONLY = new Set<string>([...READING_TOOLS, 'Agent', 'Task']);
/** Tools that `acceptEdits` mode allows without asking. */
const EDITS = new Set(['Edit', 'Write', 'MultiEdit', 'NotebookEdit']);

export const DENIED_BY_USER = 'The user denied this tool call.';

/** Whether a call in this permission mode is for a person to decide (else the CLI decides by itself). */
export function needsPerson(mode: string | undefined, toolName: string): boolean {
  const m = mode ?? 'default';
  // Modes in which the CLI never asks a person.
  if (m === 'bypassPermissions' || m === 'dontAsk' || m === 'plan') return false;
  if (READ_ONLY.has(toolName)) return false;
  return !(m === 'acceptEdits' && EDITS.has(toolName));
}

/**
 * Whether allow rules in the SDK's `allowedTools` form may cover a call: a rule for this tool
 * (`Tool`, `Tool(anything)`) or for its MCP server (`mcp__server`, `mcp__server__*`). Such a call is
 * left to the CLI, which applies the rule as it reads it (globs, prefixes, compound commands) and
 * asks through `canUseTool` when the rule does not cover it: the hook never grants by a rule itself.
 */
export function allowedByRules(rules: readonly string[], toolName: string): boolean {
  for (const rule of rules) {
    const name = /^([^(]+)/.exec(rule.trim())?.[1]?.trim();
    if (!name) continue;
    if (name === toolName) return true;
    if (name.startsWith('mcp__') && (toolName.startsWith(`${name}__`) || (name.endsWith('__*') && toolName.startsWith(name.slice(0, -1))))) return true;
  }
  return false;
}

/** The rule that allows "the same call" again: a Bash command, a file, or the tool. */
export function ruleFor(toolName: string, input: Record<string, unknown>): string {
  if (toolName === 'Bash' && typeof input.command === 'string') return input.command;
  if (EDITS.has(toolName) && typeof (input.file_path ?? input.notebook_path) === 'string') return String(input.file_path ?? input.notebook_path);
  if (toolName === 'WebFetch' && typeof input.url === 'string') return input.url;
  return '*';
}

/** The suggestion that allows the same call for the rest of the session. */
export const sameCallSuggestion = (toolName: string, rule: string): Suggestion => ({
  type: 'addRules',
  rules: [{ toolName, ruleContent: rule }],
  behavior: 'allow',
  destination: 'session',
});

/** The hook's answer from a decided request. */
export function hookAnswerFor(row: PermissionRow): HookAnswer {
  if (row.status === 'allowed') {
    const updated = row.updated_input ? (JSON.parse(row.updated_input) as Record<string, unknown>) : undefined;
    return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'allow', ...(updated ? { updatedInput: updated } : {}) } };
  }
  return { hookSpecificOutput: { hookEventName: 'PreToolUse', permissionDecision: 'deny', permissionDecisionReason: row.message ?? DENIED_BY_USER } };
}

/** The CLI's permission prompt answered from a request: null while it is pending (or there is none). */
export function toolAnswerFor(row: PermissionRow | undefined, input: Record<string, unknown>, toolUseId: string): CanUseToolAnswer | null {
  if (!row || row.status === 'pending') return null;
  if (row.status === 'allowed') {
    const updated = row.updated_input ? (JSON.parse(row.updated_input) as Record<string, unknown>) : input;
    return { behavior: 'allow', updatedInput: updated, toolUseID: toolUseId };
  }
  return { behavior: 'deny', message: row.message ?? DENIED_BY_USER, toolUseID: toolUseId };
}

/** A request as the API and the `permission_request` event show it. */
export function presentRequest(row: PermissionRow): PermissionRequest {
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
