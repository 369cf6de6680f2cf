/**
 * @module claude/runner/types
 * The runner's contract: what it is given, what a turn asks of it, what it answers.
 */
import type { CanUseTool, Options, PreToolUseHookInput, SDKMessage } from '@anthropic-ai/claude-agent-sdk';
import type { PermissionMode } from '../permission-mode.js';
import type { TurnOutcome } from '../live-session.js';
import type { ProcessRegistry } from '../processes.js';
import type { AgentOptions } from '../agent-options.js';

export type { TurnOutcome } from '../live-session.js';
export type { PreToolUseHookInput } from '@anthropic-ai/claude-agent-sdk';

/** How the CLI reaches a model. */
export interface ModelEndpoint {
  backend: 'anthropic' | 'offline';
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  authToken?: string | undefined;
}

export interface RunnerOptions {
  configDir: string;
  /**
   * Folder of the CLI processes' private TMPDIRs (resume copies land there; swept at start). Each
   * session gets one of its own below it, the same for all its processes (a deferred tool call
   * resumes only in the TMPDIR it was deferred in, measured): its sandboxed commands may write
   * their TMPDIR, and no other session's must be there to read.
   */
  tmpDir: string;
  /** The isolation policy's SDK options (sandbox, file-tool limits), the same for every process. */
  isolation?: Pick<Options, 'sandbox' | 'settings' | 'disallowedTools'>;
  model: ModelEndpoint;
  /** Operator opt-in: IS_SANDBOX=1 for the CLI, which allows bypassPermissions as root. */
  sandboxOptIn: boolean;
  turnTimeoutMs: number;
  /** How long a session's process stays open after a turn; 0 closes it at once. */
  warmIdleMs?: number;
  /** Most warm processes kept; least recently used idle ones are closed first. */
  maxWarm?: number;
  /** Prewarmed spare processes kept ready for new sessions. */
  spares?: number;
  /** How long an interrupt waits for the CLI before its process is ended (INTERRUPT_GRACE_MS). */
  interruptGraceMs?: number;
  /** Mirrors transcripts for other replicas (the SDK's sessionStore). */
  sessionStore?: Options['sessionStore'];
  /** The store's entries of a transcript whose text contains `text`, in order (the transcript is not loaded whole). */
  storedEntriesContaining?: (key: { projectKey: string; sessionId: string }, text: string) => Promise<Array<Record<string, unknown>>>;
  /** Most a turn may spend (SDK maxBudgetUsd). */
  maxBudgetUsd?: number | undefined;
  /** false: prompts get @file expansion and slash commands (default: verbatim). */
  verbatimPrompts?: boolean;
  /** Starts CLI processes in their own process group and records them. */
  processes?: ProcessRegistry;
  /** Decides tool-permission requests of a session (SDK `canUseTool`). */
  canUseTool?: (sessionId: string) => CanUseTool | undefined;
  /** The PreToolUse hook of every session (tool approvals); answers the SDK's hook output shape. */
  onPreToolUse?: (sessionId: string, input: PreToolUseHookInput) => Promise<object>;
  /**
   * Checked before a session's process starts (cold, or claiming a spare), every time: whatever
   * queued, deferred or resumed the turn, it runs only where the session may run. Throws to refuse.
   */
  beforeStart?: (spec: TurnSpec) => void | Promise<void>;
  /** Called with each line the CLI writes on stderr. */
  onStderr?: (line: string) => void;
  onEvent?: (e: RunnerEvent) => void;
}

export type RunnerEvent =
  | { type: 'spare_claimed'; sessionId: string }
  | { type: 'spare_claim_refused'; sessionId: string; reason: string }
  | { type: 'warm_closed'; sessionId: string; why: 'idle' | 'lru' };

export interface TurnSpec {
  sessionId: string;
  /** The session's owner (for the runner's beforeStart check). */
  userId?: string;
  cwd: string;
  prompt: string;
  /** The prompt as content blocks (text, images, documents) when it has attachments; `prompt` is then its text. */
  content?: ReadonlyArray<Record<string, unknown>> | null | undefined;
  /** false for the first turn of a session (the CLI creates it with this id). */
  resume: boolean;
  permissionMode: PermissionMode;
  model?: string | null | undefined;
  /** The session's agent options (system prompt, tools, MCP servers, limits, environment). */
  options?: AgentOptions | null | undefined;
  /** The turn's own output schema (else the session's, if any). */
  outputSchema?: Record<string, unknown> | null | undefined;
  /** Title for a new session. */
  title?: string | null | undefined;
  /** Receives every SDK message of the turn as it arrives (awaited: messages stay in order). */
  onMessage?: (m: SDKMessage) => unknown;
  /**
   * Awaited once the turn counts as starting here (shutdown waits for it) and before its process is
   * taken or started (the snapshot of the session's folder, when it is not known yet).
   */
  prepare?: () => Promise<void>;
  /** Resume the session with no prompt: its last turn deferred a tool call, which now runs. */
  continueDeferred?: boolean;
}

export interface RunnerStats {
  /** Live session processes (warm or running a turn). */
  warm: number;
  /** Processes running a turn right now. */
  busy: number;
  /** Spare processes parked and ready (unreserved). */
  spares: number;
  /** Spares reserved by a new session that has not run its first turn yet. */
  reserved: number;
}

export interface ClaudeRunner {
  /** Runs a turn to its end. Throws AppError SESSION_NOT_FOUND when the CLI does not know a resumed id. */
  runTurn(spec: TurnSpec): Promise<TurnOutcome>;
  /** Interrupts the running turn of a session; false when none runs here. */
  interrupt(sessionId: string, reason?: { code: string; message: string }): Promise<boolean>;
  /**
   * A session id bound to a parked spare process, for a new session: its first turn claims the
   * spare instead of starting a process. Null when no spare is ready.
   */
  reserveSpare(): string | null;
  /** Closes the process of a session (warm or reserved spare), if any. */
  release(sessionId: string): void;
  /** Resolves once the session's latest process here has ended (at once when it has none). */
  ended(sessionId: string): Promise<void>;
  stats(): RunnerStats;
  /** Closes a session's warm process (not a reserved spare, not one running a turn): its view is stale. */
  discardWarm(sessionId: string): void;
  /** Sessions with a live process here (warm or running a turn). */
  liveSessions(): string[];
  /** Closes every live process; running turns end `interrupted` with `reason`. */
  closeAll(reason?: { code: string; message: string }): Promise<void>;
}
