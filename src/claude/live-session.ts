/**
 * @module claude/live-session
 * One CLI process in streaming-input mode, bound to one session. Prompts are pushed into an
 * input queue; a pump reads every message the Query yields and hands it to the turn that is
 * running; a `result` message ends that turn, and the process stays open for the next one
 * (~20-30 ms a turn instead of ~300-450 ms for a new process).
 */
import type { Query, SDKMessage, SDKUserMessage } from '@anthropic-ai/claude-agent-sdk';
import type { PermissionMode } from './permission-mode.js';
import type { TurnStatus } from '../schemas.js';
import { CostMeter } from './cost.js';
import type { ErrorCode, TurnErrorCode } from '../errors.js';

/** A push-driven async iterable of user messages: the Query's input. */
export class Inbox implements AsyncIterable<SDKUserMessage> {
  private items: SDKUserMessage[] = [];
  private wake: (() => void) | null = null;
  private ended = false;

  push(prompt: string | ReadonlyArray<Record<string, unknown>>): void {
    const content = (typeof prompt === 'string' ? prompt : [...prompt]) as SDKUserMessage['message']['content'];
    this.items.push({ type: 'user', message: { role: 'user', content }, parent_tool_use_id: null });
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SDKUserMessage> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.ended) return;
      await new Promise<void>((r) => (this.wake = r));
      this.wake = null;
    }
  }
}

export interface TurnOutcome {
  /** How a turn that reached a process ended (never queued, running or cancelled). */
  status: Extract<TurnStatus, 'succeeded' | 'failed' | 'interrupted'>;
  result: string | null;
  error: { code: string; message: string } | null;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  durationMs: number;
  /** With an output schema: the answer, validated by the CLI against it. */
  structuredOutput?: unknown;
  /** The CLI said it has no conversation with this id (a resume of an unknown session). */
  notFound?: boolean;
  /** A prewarmed spare refused the claim before running the prompt. */
  notClaimed?: boolean;
  /** The turn ended with a tool call deferred by a hook (it waits for a person's approval). */
  deferred?: { id: string; name: string; input: Record<string, unknown> } | undefined;
}

interface Current {
  onMessage: (m: SDKMessage) => unknown;
  resolve: (o: TurnOutcome) => void;
  started: number;
  interrupted: boolean;
  stopReason: { code: string; message: string } | null;
  /** Messages seen for this turn: an interrupt sent before the first one may be ignored by the CLI. */
  seen: number;
}

const NOT_FOUND = /No conversation found with session ID/i;
const SANDBOX_REFUSED = /sandbox_required_unavailable|sandbox[^.]*(unavailable|not available|cannot run|missing)/i;

/** Settings the process was started with that a turn cannot change in place. */
export interface Fingerprint {
  model: string | null;
  /** The agent options and output schema (claude/agent-options optionsKey). */
  options: string;
}

export class LiveSession {
  busy = false;
  alive = true;
  lastUsed = Date.now();
  turns = 0;
  private current: Current | null = null;
  /** Each turn's own cost, from the CLI's running total. */
  readonly cost = new CostMeter();
  private costPending = true;
  private closedBy: { code: string; message: string } | null = null;
  private markEnded!: () => void;
  /** Settles once the process has ended and its last message was read. */
  readonly ended = new Promise<void>((r) => (this.markEnded = r));

  constructor(
    readonly sessionId: string,
    readonly cwd: string,
    private readonly q: Query,
    private readonly inbox: Inbox,
    readonly fingerprint: Fingerprint,
    public mode: PermissionMode,
    /** True when the process was a prewarmed spare claimed for this session. */
    readonly fromSpare: boolean,
    private readonly onEnd: (s: LiveSession) => void,
  ) {
    void this.pump();
  }

  private async pump() {
    let thrown: unknown;
    try {
      for await (const m of this.q) {
        let turnCost = 0;
        if (m.type === 'result') {
          if (this.costPending) {
            await this.cost.whenReady(); // known long before: a resumed process takes ~300 ms to answer
            this.costPending = false;
          }
          turnCost = this.cost.next(m.total_cost_usd ?? 0);
        }
        const cur = this.current;
        if (!cur) continue; // between turns: nothing is waiting for it
        if (cur.seen++ === 0 && cur.interrupted) {
          // Interrupted before the CLI had begun the turn: say it again now that it has.
          this.q.interrupt().catch(() => {});
        }
        if (m.type === 'result') {
          // A spare's refusal is handled by the runner (it retries cold): not the client's news.
          const refused = m.subtype !== 'success' && (m.errors ?? []).some((e) => e.startsWith('not_claimed'));
          if (!refused) {
            const r = cur.onMessage(m);
            if (r instanceof Promise) await r;
          }
          this.finish(cur, m, turnCost);
          continue;
        }
        // Awaited only when the handler is asynchronous: the common path costs no extra turn of the loop.
        const r = cur.onMessage(m);
        if (r instanceof Promise) await r;
      }
    } catch (err) {
      thrown = err;
    }
    this.alive = false;
    const cur = this.current;
    if (cur) {
      this.current = null;
      const message = this.closedBy?.message ?? (thrown ? String((thrown as Error).message ?? thrown) : 'the CLI process ended during the turn');
      const notFound = NOT_FOUND.test(message);
      cur.resolve({
        status: this.closedBy?.code === 'SERVER_SHUTDOWN' || cur.interrupted ? 'interrupted' : 'failed',
        result: null,
        error: cur.stopReason ?? this.closedBy ?? { code: 'CLI_EXITED', message },
        costUsd: 0,
        inputTokens: 0,
        outputTokens: 0,
        durationMs: Date.now() - cur.started,
        notFound,
      });
    }
    this.onEnd(this);
    this.markEnded();
  }

  private finish(cur: Current, m: Extract<SDKMessage, { type: 'result' }>, costUsd: number) {
    this.current = null;
    this.busy = false;
    this.lastUsed = Date.now();
    const base = {
      costUsd,
      inputTokens: m.usage?.input_tokens ?? 0,
      outputTokens: m.usage?.output_tokens ?? 0,
      durationMs: Date.now() - cur.started,
    };
    const errors = m.subtype === 'success' ? [] : (m.errors ?? []);
    const text = m.subtype === 'success' ? m.result : errors.join('; ') || m.subtype;
    if (m.subtype === 'success' && !m.is_error) {
      const deferred = m.terminal_reason === 'tool_deferred' ? m.deferred_tool_use : undefined;
      const structured = m.structured_output !== undefined ? { structuredOutput: m.structured_output } : {};
      cur.resolve({ ...base, status: 'succeeded', result: m.result, error: null, deferred, ...structured });
      return;
    }
    if (errors.some((e) => NOT_FOUND.test(e)) || NOT_FOUND.test(text)) {
      cur.resolve({ ...base, status: 'failed', result: null, error: { code: 'SESSION_NOT_FOUND', message: text }, notFound: true });
      return;
    }
    if (text.startsWith('not_claimed') || errors.some((e) => e.startsWith('not_claimed'))) {
      cur.resolve({ ...base, status: 'failed', result: null, error: { code: 'NOT_CLAIMED', message: text }, notClaimed: true });
      return;
    }
    if (cur.interrupted) {
      cur.resolve({ ...base, status: 'interrupted', result: null, error: cur.stopReason ?? { code: 'INTERRUPTED', message: 'the turn was interrupted' } });
      return;
    }
    // A sandbox that is required and cannot run: the CLI ends the turn before any tool call.
    const sandbox = errors.some((e) => SANDBOX_REFUSED.test(e));
    const code: TurnErrorCode | ErrorCode = sandbox
      ? 'SANDBOX_UNAVAILABLE'
      : m.subtype === 'error_max_turns'
        ? 'MAX_TURNS'
        : m.subtype === 'error_max_budget_usd'
          ? 'BUDGET_EXCEEDED'
          : m.subtype === 'error_max_structured_output_retries'
            ? 'STRUCTURED_OUTPUT_INVALID'
            : 'MODEL_ERROR';
    cur.resolve({ ...base, status: 'failed', result: m.subtype === 'success' ? m.result : null, error: { code, message: text } });
  }

  /**
   * Runs one turn: pushes the prompt and resolves when its `result` arrives (or the process
   * ends). With no prompt, the process goes on by itself (a resumed session whose last turn
   * deferred a tool call runs that call first).
   */
  runTurn(prompt: string | ReadonlyArray<Record<string, unknown>> | null, onMessage: Current['onMessage']): Promise<TurnOutcome> {
    if (!this.alive) return Promise.reject(new Error('the CLI process of this session has ended'));
    if (this.current) return Promise.reject(new Error('a turn is already running in this process'));
    this.busy = true;
    this.turns++;
    return new Promise<TurnOutcome>((resolve) => {
      this.current = { onMessage, resolve, started: Date.now(), interrupted: false, stopReason: null, seen: 0 };
      if (prompt !== null) this.inbox.push(prompt);
    });
  }

  /** Switches the permission mode in place; false when the CLI refuses it. */
  async setMode(mode: PermissionMode): Promise<boolean> {
    if (mode === this.mode) return true;
    try {
      await this.q.setPermissionMode(mode);
      this.mode = mode;
      return true;
    } catch {
      return false;
    }
  }

  /** Ends the process group at once (SIGKILL): for a CLI that answers nothing. Set by the runner. */
  kill: (() => void) | null = null;
  /** How long an interrupt waits for the CLI's answer before the process is ended. */
  interruptGraceMs = 5_000;

  /**
   * Interrupts the running turn; it ends `interrupted` (with `reason` as its error, when given). A
   * CLI that does not answer within `interruptGraceMs` (stopped, or no longer reading its input) is
   * ended, and the turn with it.
   */
  async interrupt(reason?: { code: string; message: string }): Promise<boolean> {
    const cur = this.current;
    if (!cur) return false;
    cur.interrupted = true;
    if (reason) cur.stopReason = reason;
    let timer: NodeJS.Timeout | undefined;
    const asked = this.q.interrupt().then(() => 'answered' as const);
    asked.catch(() => {});
    try {
      const how = await Promise.race([asked, new Promise<'silent'>((r) => (timer = setTimeout(() => r('silent'), this.interruptGraceMs)))]);
      if (how === 'silent')
        this.forceStop(
          reason ?? { code: 'INTERRUPTED', message: `the CLI did not answer the interrupt within ${this.interruptGraceMs} ms; its process was ended` },
        );
    } catch {
      this.close(reason);
    } finally {
      clearTimeout(timer);
    }
    return true;
  }

  /** Ends the process now, whatever state it is in; a running turn ends with `reason`. */
  forceStop(reason: { code: string; message: string }): void {
    this.close(reason);
    this.kill?.();
  }

  /** Ends the process; a running turn ends with `reason`. */
  close(reason?: { code: string; message: string }): void {
    if (reason) this.closedBy = reason;
    this.alive = false;
    this.inbox.end();
    this.q.close();
  }
}
