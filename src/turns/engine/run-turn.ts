/**
 * @module turns/engine/run-turn
 * Runs one claimed turn: announces it, sends its prompt to the session's CLI (the bookkeeping is
 * written while the CLI works), waits through its tool approvals, records the outcome and tells
 * whoever waits. Whatever breaks, the turn is recorded as failed and its waiters answered.
 */
import { monotonicNow } from '../../clock.js';
import type { TurnOutcome, TurnSpec } from '../../claude/runner/index.js';
import type { PermissionMode } from '../../claude/permission-mode.js';
import type { SessionRepository, SessionRow } from '../../storage/sessions-repo.js';
import type { TurnRow } from '../../storage/turns-repo.js';
import { presentTurn } from '../present.js';
import type { EngineContext } from './deps.js';
import type { Slot } from './admission.js';
import { afterPendingWork } from './state.js';
import { announceEnd, outcomeWithout } from './outcome.js';
import { failedOutcome, runThroughApprovals } from './approval-wait.js';
import { READING_TOOLS } from '../../permissions/policy.js';

/** A turn this process has written as running and now runs. */
export interface ClaimedRun {
  turn: TurnRow;
  startedAt: number;
  slot: Slot;
  /** The session's row when the caller has it fresh (read otherwise). */
  session?: SessionRow | undefined;
  /** A turn of an earlier run that waits for the approval of this deferred tool call. */
  waitingFor?: string | undefined;
  /** A turn whose prompt went to the CLI before its row was written: the row, once it is (null: refused). */
  written?: Promise<TurnRow | null> | undefined;
}

export type RunTurn = (run: ClaimedRun) => Promise<void>;

export function createRunTurn(ctx: EngineContext): RunTurn {
  const { state, log } = ctx;
  const neverWritten = async (run: ClaimedRun) => Boolean(run.written && !(await run.written.catch(() => null)));

  return async (run) => {
    const { turn, startedAt } = run;
    try {
      await runUnsafe(ctx, run);
    } catch (err) {
      state.idle(turn.session_id);
      // Never recorded: nothing to fail.
      if (await neverWritten(run)) return;
      log.error({ err, turn_id: turn.turn_id }, 'turn bookkeeping failed; recording the turn as failed');
      const at = monotonicNow();
      const failed: TurnRow = {
        ...turn,
        status: 'failed',
        started_at: startedAt,
        finished_at: at,
        duration_ms: at - startedAt,
        error_code: 'INTERNAL',
        error_message: 'the server could not record this turn',
      };
      try {
        if (
          await ctx.turns.finish(turn.turn_id, ctx.runnerId, {
            status: 'failed',
            finished_at: at,
            duration_ms: failed.duration_ms,
            error_code: 'INTERNAL',
            error_message: failed.error_message,
          })
        ) {
          await announceEnd(ctx.events, failed);
        }
      } catch (err2) {
        log.error({ err: err2, turn_id: turn.turn_id }, 'could not record a failed turn');
      }
      ctx.waiters.ended((await ctx.turns.get(turn.turn_id).catch(() => undefined)) ?? failed);
    }
  };
}

const parseJson = (s: string | null): unknown => (s === null ? null : JSON.parse(s));

/** Tools that change no file (all others may: Bash, Write, Edit, MCP tools, subagents...). */
const NO_FILE_CHANGES = new Set<string>([...READING_TOOLS, 'WebFetch', 'WebSearch', 'ExitPlanMode', 'AskUserQuestion']);

/** Whether an SDK message is the model calling a tool that may change files. */
function ranChangingTool(m: unknown): boolean {
  const msg = m as { type?: string; message?: { content?: unknown } };
  if (msg.type !== 'assistant' || !Array.isArray(msg.message?.content)) return false;
  return (msg.message.content as Array<{ type?: string; name?: string }>).some((b) => b.type === 'tool_use' && !NO_FILE_CHANGES.has(b.name ?? ''));
}

/** The MCP servers an init message reports as not connected (null: none, or not an init message). */
function failedMcpServers(m: unknown): Array<{ name: string; status: string }> | null {
  const msg = m as { type?: string; subtype?: string; mcp_servers?: Array<{ name: string; status: string }> };
  if (msg.type !== 'system' || msg.subtype !== 'init' || !msg.mcp_servers) return null;
  const bad = msg.mcp_servers.filter((s) => s.status !== 'connected').map((s) => ({ name: s.name, status: s.status }));
  return bad.length > 0 ? bad : null;
}

/** Sends the turn to the CLI (or decides it cannot run) and returns its first outcome. */
async function start(ctx: EngineContext, run: ClaimedRun, session: SessionRow, spec: TurnSpec, announced: Promise<void>): Promise<TurnOutcome> {
  const { turn, startedAt } = run;
  const patch: Parameters<SessionRepository['update']>[1] = { last_active: startedAt };
  if (session.first_prompt === null) patch.first_prompt = turn.prompt.slice(0, 1000);
  if (session.status === 'archived') patch.status = 'active';
  if (run.waitingFor) {
    // Taken up after a restart: the CLI deferred this tool call before the server stopped.
    return { ...outcomeWithout('succeeded', null), deferred: { id: run.waitingFor, name: '', input: {} } };
  }
  if (ctx.state.stopBeforeStart.delete(turn.turn_id)) {
    await ctx.sessions.update(session.session_id, patch);
    return outcomeWithout('interrupted', { code: 'INTERRUPTED', message: 'interrupted by a client before it started' });
  }
  // (A turn whose prompt goes first was checked at submission, in this same run of the event loop.)
  if (spec.resume && !run.written && !(await ctx.transcriptExists(session))) {
    await ctx.sessions.update(session.session_id, patch);
    return outcomeWithout('failed', { code: 'TRANSCRIPT_MISSING', message: 'the transcript vanished before this turn ran' });
  }
  if (spec.resume && ctx.prepareResume && !ctx.runner.liveSessions().includes(session.session_id)) await ctx.prepareResume(session);
  // The prompt goes to the CLI first; the bookkeeping is written while it works.
  const pending = ctx.runner.runTurn(spec);
  // A refusal before the process starts (its folder, shutdown) is read below, after the bookkeeping.
  pending.catch(() => {});
  try {
    await afterPendingWork();
    await announced;
    await ctx.sessions.update(session.session_id, patch);
  } catch (err) {
    ctx.log.error({ err, turn_id: turn.turn_id }, 'could not record the start of a turn');
  }
  try {
    return await pending;
  } catch (err) {
    return failedOutcome(ctx, turn.turn_id, startedAt, err);
  }
}

async function runUnsafe(ctx: EngineContext, run: ClaimedRun): Promise<void> {
  const { state, events, metrics, log } = ctx;
  const { turn, startedAt, slot } = run;
  const session = run.session ?? (await ctx.sessions.get(turn.session_id))!;
  state.current.set(session.session_id, turn.turn_id);
  const running: TurnRow = { ...turn, status: 'running', started_at: startedAt };
  const announced = Promise.resolve(events.append(turn.session_id, turn.turn_id, 'turn', presentTurn(running))).then(
    () => {},
    (err: unknown) => log.error({ err, turn_id: turn.turn_id }, 'could not announce a turn'),
  );
  metrics.turnStarted();
  let firstEvent = 0;
  // Whether the turn ran a tool that can change files (then its folder is snapshotted when it ends).
  let touched = false;
  const spec: TurnSpec = {
    sessionId: session.session_id,
    userId: session.user_id,
    cwd: session.cwd,
    prompt: turn.prompt,
    resume: Boolean(session.started),
    permissionMode: (turn.permission_mode ?? session.permission_mode) as PermissionMode,
    model: session.model,
    options: parseJson(session.options) as TurnSpec['options'],
    content: parseJson(turn.content) as TurnSpec['content'],
    outputSchema: parseJson(turn.output_schema) as TurnSpec['outputSchema'],
    title: session.session_name,
    onMessage: (m: unknown) => {
      if (!firstEvent) {
        firstEvent = Date.now();
        metrics.firstEvent((firstEvent - startedAt) / 1000);
      }
      // Not awaited: the log keeps the session's events in order, and the CLI's output keeps flowing.
      const e = events.append(turn.session_id, turn.turn_id, 'message', m);
      if (e instanceof Promise) e.catch((err: unknown) => log.error({ err, turn_id: turn.turn_id }, 'could not log an event'));
      if (!touched && ranChangingTool(m)) touched = true;
      // An MCP server that could not start is said on the turn at once (the turn goes on without its tools).
      const failed = spec.options?.mcp_servers ? failedMcpServers(m) : null;
      if (failed) {
        const f = events.append(turn.session_id, turn.turn_id, 'error', {
          code: 'MCP_SERVER_FAILED',
          message: `MCP server${failed.length > 1 ? 's' : ''} ${failed.map((n) => `"${n.name}" (${n.status})`).join(', ')} could not be reached; the turn goes on without ${failed.length > 1 ? 'their' : 'its'} tools`,
          servers: failed,
        });
        if (f instanceof Promise) f.catch((err: unknown) => log.error({ err, turn_id: turn.turn_id }, 'could not log an event'));
      }
    },
  };
  // The folder's state before the turn: its last snapshot's, read from beside it, unless something else changed
  // it since (then a snapshot is taken). The runner waits for it with the turn counted as starting.
  const snap = { before: null as string | null };
  if (ctx.snapshots && !run.waitingFor) {
    const b = ctx.snapshots.before(session.cwd);
    if (b)
      spec.prepare = async () => {
        snap.before = await b;
      };
  }
  const first = await start(ctx, run, session, spec, announced);
  const before = snap.before;
  const outcome = await runThroughApprovals(ctx, { turn, session, spec, slot, outcome: first, startedAt });
  if (!outcome) return;
  state.current.delete(session.session_id);
  let after: string | null = null;
  if (before && ctx.snapshots) {
    try {
      const a = await ctx.snapshots.after(session.cwd, before, touched);
      after = a.tree;
      if (a.changes.length > 0) await events.append(session.session_id, turn.turn_id, 'files_changed', { turn_id: turn.turn_id, files: a.changes });
    } catch (err) {
      log.warn({ err, turn_id: turn.turn_id }, "could not snapshot the session's folder after a turn");
    }
  }
  const finished = monotonicNow();
  const done: TurnRow = {
    ...running,
    status: outcome.status,
    result: outcome.result,
    error_code: outcome.error?.code ?? null,
    error_message: outcome.error?.message ?? null,
    finished_at: finished,
    duration_ms: finished - startedAt,
    cost_usd: outcome.costUsd,
    input_tokens: outcome.inputTokens,
    output_tokens: outcome.outputTokens,
    structured_output: outcome.structuredOutput === undefined ? null : JSON.stringify(outcome.structuredOutput),
    snapshot_before: before,
    snapshot_after: after,
  };
  // The turn no longer counts against the bounds once its outcome is known, before it is
  // visible as ended: a client that saw it end may start the next one at once.
  ctx.bounds.untrack(turn.turn_id);
  slot.release();
  if (run.written && !(await run.written.catch(() => null))) {
    // Its row could not be written (the submission failed, the CLI was stopped): nothing to
    // record, but whoever follows the session's events sees the turn end.
    state.idle(session.session_id);
    await announceEnd(events, { ...done, status: 'failed', error_code: 'INTERNAL', error_message: 'the turn could not be recorded and was stopped' });
    return;
  }
  const recorded = await ctx.turns.finish(turn.turn_id, ctx.runnerId, {
    status: done.status,
    result: done.result,
    error_code: done.error_code,
    error_message: done.error_message,
    finished_at: done.finished_at,
    duration_ms: done.duration_ms,
    cost_usd: done.cost_usd,
    input_tokens: done.input_tokens,
    output_tokens: done.output_tokens,
    structured_output: done.structured_output,
    snapshot_before: done.snapshot_before,
    snapshot_after: done.snapshot_after,
  });
  if (!recorded) {
    // Another replica took the session over (this one lost its lease): its record stands, and
    // this process's view of the conversation is stale.
    log.warn({ turn_id: turn.turn_id, session_id: session.session_id }, 'turn ended after another replica took its session over');
    ctx.runner.release(session.session_id);
    ctx.waiters.ended((await ctx.turns.get(turn.turn_id)) ?? done);
    return;
  }
  const startedNow = !session.started && (await ctx.transcriptExists(session));
  await ctx.sessions.addTurn(session.session_id, {
    at: finished,
    costUsd: outcome.costUsd,
    inputTokens: outcome.inputTokens,
    outputTokens: outcome.outputTokens,
    started: startedNow,
  });
  if (startedNow) await ctx.onStarted?.(session);
  metrics.turnFinished(done.status, (done.duration_ms ?? 0) / 1000);
  await announceEnd(events, done);
  ctx.waiters.ended(done);
}
