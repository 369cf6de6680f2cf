/**
 * @module turns/engine/submit
 * Takes a new turn by one of three paths, fastest first:
 * 1. prompt first: one process, an idle session, a free slot: the prompt goes to the CLI and the
 *    row is written while it works (this process is the only writer of the session's turns);
 * 2. claim now: an idle session this replica holds and a free slot: the turn is written as
 *    running (the database refuses it if another one runs) and its actor starts at once;
 * 3. queue: written as queued (bounded, 429 beyond); the session's actor, here or on the replica
 *    holding the session, takes it in order. `if_busy` decides what a busy session does.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../errors.js';
import { monotonicNow } from '../../clock.js';
import type { PermissionMode } from '../../claude/permission-mode.js';
import type { SessionRow } from '../../storage/sessions-repo.js';
import type { NewTurn, TurnRow } from '../../storage/turns-repo.js';
import type { IfBusy } from '../schemas.js';
import { presentTurn } from '../present.js';
import type { EngineContext } from './deps.js';
import { afterPendingWork } from './state.js';
import type { Kick } from './actors.js';
import type { InterruptTurn } from './interrupt.js';

export interface SubmitInput {
  prompt: string;
  /** JSON text of the prompt's content blocks, when it has attachments. */
  content?: string | null | undefined;
  /** JSON text of the attachments' summary. */
  attachments?: string | null | undefined;
  /** JSON text of the turn's own output schema. */
  outputSchema?: string | null | undefined;
  ifBusy: IfBusy;
  permissionMode: PermissionMode;
}

export type Submit = (session: SessionRow, input: SubmitInput) => Promise<TurnRow>;

const busy = (sessionId: string) =>
  new AppError('SESSION_BUSY', `session ${sessionId} is running a turn; retry when it ends, or send if_busy "queue" or "interrupt"`);

const toQueued = (row: TurnRow): TurnRow => ({ ...row, status: 'queued', started_at: null, runner_id: null });

export function createSubmit(ctx: EngineContext, kick: Kick, interruptTurn: InterruptTurn): Submit {
  const { state, turns, bounds, admission, metrics } = ctx;

  /** Path 1; null when the path is not open (another submission or turn of the session, no slot). */
  async function promptFirst(session: SessionRow, base: NewTurn): Promise<TurnRow | null> {
    const id = session.session_id;
    const open = !ctx.cluster.shared && !state.writeFirst.has(id) && !state.actors.has(id) && !bounds.hasQueued(id) && state.submitting.get(id) === 1;
    const release = open ? admission.tryAcquire(session.user_id) : null;
    if (!release) return null;
    const row: TurnRow = { ...base, seq: 0, status: 'running', started_at: base.created_at, runner_id: ctx.runnerId };
    let settleWritten: (r: TurnRow | null) => void = () => {};
    const written = new Promise<TurnRow | null>((r) => (settleWritten = r));
    state.rowPending.set(id, written);
    bounds.track(row.turn_id, session.user_id, false, id);
    metrics.turnQueued();
    kick(id, { turn: row, session, release, written });
    let inserted: TurnRow | null = null;
    let failure: unknown = null;
    try {
      // The SDK writes the prompt to the CLI a few promise steps after it is pushed: let it.
      await afterPendingWork();
      inserted = await turns.insert({ ...base, status: 'running', started_at: base.created_at, runner_id: ctx.runnerId });
    } catch (err) {
      failure = err;
    } finally {
      settleWritten(inserted);
      state.rowPending.delete(id);
    }
    if (inserted) return inserted;
    // The prompt already went to the CLI: stop it, and write this session's turns first from now on.
    state.writeFirst.add(id);
    await interruptTurn(id, row.turn_id, 'the turn could not be recorded', ctx.runnerId);
    if (failure) throw failure instanceof Error ? failure : new Error('the turn could not be recorded', { cause: failure });
    // A running row no actor of this process runs (left by a failed bookkeeping).
    ctx.log.error({ session_id: id }, 'a running turn of this session exists that no actor of this process runs');
    throw busy(id);
  }

  /** Path 2: the row as running, or as queued when it must wait after all; null when no slot is free. */
  async function claimNow(session: SessionRow, base: NewTurn, input: SubmitInput): Promise<TurnRow | null> {
    const id = session.session_id;
    const release = admission.tryAcquire(session.user_id);
    if (!release) return null;
    let claimed: TurnRow | null = null;
    try {
      claimed = await turns.insert({ ...base, status: 'running', started_at: base.created_at, runner_id: ctx.runnerId });
    } catch (err) {
      release();
      throw err;
    }
    // A turn queued just before (its actor not started yet) goes first: this one waits its turn.
    if (claimed && (await turns.unfinishedBefore(id, claimed.seq)).length > 0) {
      release();
      await turns.update(claimed.turn_id, { status: 'queued', started_at: null, runner_id: null });
      kick(id); // the earlier turn's actor may have seen this one as running
      return queue(session, toQueued(claimed), input, true, base.created_at);
    }
    if (claimed && !state.actors.has(id)) {
      bounds.track(claimed.turn_id, session.user_id, false, id);
      metrics.turnQueued();
      kick(id, { turn: claimed, session, release });
      return claimed;
    }
    release();
    if (claimed) {
      // An actor appeared meanwhile: hand the turn back to the queue.
      await turns.update(claimed.turn_id, { status: 'queued', started_at: null, runner_id: null });
      return queue(session, toQueued(claimed), input, true, base.created_at);
    }
    // The database refused it: another turn runs.
    if (input.ifBusy === 'reject') throw busy(id);
    return null;
  }

  /** Path 3, once the row is written as queued. */
  async function queue(session: SessionRow, row: TurnRow, input: SubmitInput, mine: boolean, now: number): Promise<TurnRow> {
    const id = session.session_id;
    // Counted here until it ends, wherever it runs (the holder's `finished` notice, or the sweep);
    // counted before anything is awaited, so an actor that runs it meanwhile finds it counted.
    bounds.track(row.turn_id, session.user_id, true, id);
    const earlier = await turns.unfinishedBefore(id, row.seq);
    // Refused only if it is still queued: had the earlier turn just ended, it may be running now.
    if (earlier.length > 0 && input.ifBusy === 'reject' && (await turns.removeQueued(row.turn_id))) {
      bounds.untrack(row.turn_id);
      throw busy(id);
    }
    metrics.turnQueued();
    await ctx.sessions.update(id, { last_active: now });
    // Not if another replica's actor took it up meanwhile (its log then starts with running).
    await ctx.events.appendQueued(id, row.turn_id, presentTurn(row));
    announced(row.turn_id);
    const runningTurn = earlier.find((t) => t.status === 'running');
    if (input.ifBusy === 'interrupt' && runningTurn)
      await interruptTurn(id, runningTurn.turn_id, 'interrupted by a newer turn (if_busy: interrupt)', runningTurn.runner_id);
    if (mine) kick(id);
    else ctx.cluster.publish({ k: 'queued', s: id });
    return row;
  }

  async function submit(session: SessionRow, input: SubmitInput, turnId: string): Promise<TurnRow> {
    const id = session.session_id;
    if (state.draining) throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
    // The waiting line bounds turns that wait: one that can start now is let through, even when
    // the line is full (or MAX_QUEUED_TURNS=0); a full line is checked below, before a turn is written to wait.
    bounds.checkUser(session.user_id);
    const now = monotonicNow();
    const base: NewTurn = {
      turn_id: turnId,
      session_id: id,
      user_id: session.user_id,
      status: 'queued',
      prompt: input.prompt,
      permission_mode: input.permissionMode,
      result: null,
      error_code: null,
      error_message: null,
      created_at: now,
      started_at: null,
      finished_at: null,
      duration_ms: null,
      cost_usd: null,
      input_tokens: null,
      output_tokens: null,
      runner_id: null,
      content: input.content ?? null,
      attachments: input.attachments ?? null,
      output_schema: input.outputSchema ?? null,
      structured_output: null,
      snapshot_before: null,
      snapshot_after: null,
    };
    const first = await promptFirst(session, base);
    if (first) return first;
    // Only the replica holding the session's lease runs it; any other queues the turn for it.
    const mine = await ctx.cluster.acquire(id);
    // A turn whose prompt went first is having its row written: turns after it wait for that.
    for (let p = state.rowPending.get(id); p; p = state.rowPending.get(id)) await p;
    if (mine && !state.actors.has(id)) {
      const claimed = await claimNow(session, base, input);
      if (claimed) return claimed;
    }
    // An idle session whose actor is still winding down after its last turn (its answer went
    // out first) takes this turn at once, with a slot free for it: that is not waiting in line.
    const windingDown = state.actors.has(id) && !state.current.has(id) && !bounds.hasQueued(id) && admission.canStart(session.user_id);
    const row = await bounds.enqueue(windingDown, () => turns.insert(base));
    if (!row) throw new Error('a queued turn could not be written');
    return queue(session, row, input, mine, now);
  }

  /** The turn's `queued` event is in the log, or it will have none: an actor holding it may go on. */
  const settles = new Map<string, () => void>();
  function announced(turnId: string) {
    settles.get(turnId)?.();
    settles.delete(turnId);
    state.announcing.delete(turnId);
  }

  return async (session, input) => {
    const id = session.session_id;
    state.submitting.set(id, (state.submitting.get(id) ?? 0) + 1);
    // Known before its row can be seen: whichever path the turn takes, an actor that finds it queued
    // appends its `running` only after the `queued` event (never the other way round in the log).
    const turnId = randomUUID();
    state.announcing.set(turnId, new Promise<void>((r) => settles.set(turnId, r)));
    try {
      return await submit(session, input, turnId);
    } finally {
      announced(turnId);
      const n = (state.submitting.get(id) ?? 1) - 1;
      if (n <= 0) state.submitting.delete(id);
      else state.submitting.set(id, n);
    }
  };
}
