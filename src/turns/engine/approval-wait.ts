/**
 * @module turns/engine/approval-wait
 * A tool call deferred for approval: the turn waits for a person (holding no admission slot),
 * then resumes the session, whose CLI runs the call (or reports its denial) and goes on. An
 * interrupt meanwhile denies the call and ends the turn interrupted.
 */
import { AppError } from '../../errors.js';
import type { TurnOutcome, TurnSpec } from '../../claude/runner/index.js';
import type { SessionRow } from '../../storage/sessions-repo.js';
import type { TurnRow } from '../../storage/turns-repo.js';
import { ENDED } from '../../schemas.js';
import type { EngineContext } from './deps.js';
import type { Slot } from './admission.js';
import { outcomeWithout } from './outcome.js';

export interface DeferredRun {
  turn: TurnRow;
  session: SessionRow;
  spec: TurnSpec;
  slot: Slot;
  /** The outcome so far (possibly a deferred tool call). */
  outcome: TurnOutcome;
  startedAt: number;
}

/** The outcome of a failure the runner threw. */
export function failedOutcome(ctx: EngineContext, turnId: string, startedAt: number, err: unknown): TurnOutcome {
  const code = err instanceof AppError ? err.code : 'INTERNAL';
  if (code === 'INTERNAL') ctx.log.error({ err, turn_id: turnId }, 'turn failed');
  return outcomeWithout('failed', { code, message: (err as Error).message }, Date.now() - startedAt);
}

/**
 * Runs the turn on through each approval it waits for; its final outcome, or null when another
 * replica took the session over meanwhile (that one goes on with the turn).
 */
export async function runThroughApprovals(ctx: EngineContext, run: DeferredRun): Promise<TurnOutcome | null> {
  const { state } = ctx;
  const { turn, session, slot } = run;
  let outcome = run.outcome;
  let interrupted = false;
  let deferredOnce = false;
  while (outcome.status === 'succeeded' && outcome.deferred) {
    deferredOnce = true;
    // An interrupt that raced the deferral: what was asked meanwhile is denied too.
    if (state.interruptedWhileWaiting.has(turn.turn_id)) await ctx.approvals.denyPending(session.session_id, 'interrupt');
    slot.release();
    state.waitingApproval.set(session.session_id, turn.turn_id);
    await ctx.approvals.settled(session.session_id, outcome.deferred.id);
    state.waitingApproval.delete(session.session_id);
    if (!(await ctx.cluster.acquire(session.session_id))) {
      // Another replica took the session over while a person decided: it resumes the call.
      ctx.log.warn(
        { turn_id: turn.turn_id, session_id: session.session_id },
        'lease lost while a tool call waited for approval; leaving the turn to the replica holding it',
      );
      state.current.delete(session.session_id);
      state.interruptedWhileWaiting.delete(turn.turn_id);
      state.stopBeforeStart.delete(turn.turn_id);
      ctx.bounds.untrack(turn.turn_id);
      slot.release();
      const now = await ctx.turns.get(turn.turn_id);
      if (now && ENDED.includes(now.status)) ctx.waiters.settle(now);
      return null;
    }
    if (state.interruptedWhileWaiting.delete(turn.turn_id)) interrupted = true;
    await slot.reacquire();
    if (state.interruptedWhileWaiting.delete(turn.turn_id) || state.stopBeforeStart.delete(turn.turn_id)) {
      // Interrupted after the decision, before the call ran: it is denied after all.
      interrupted = true;
      await ctx.approvals.revoke(session.session_id, outcome.deferred.id, 'interrupt');
    }
    const before = outcome;
    let next: TurnOutcome;
    try {
      next = await ctx.runner.runTurn({ ...run.spec, resume: true, continueDeferred: true });
    } catch (err) {
      next = failedOutcome(ctx, turn.turn_id, run.startedAt, err);
    }
    outcome = {
      ...next,
      costUsd: before.costUsd + next.costUsd,
      inputTokens: before.inputTokens + next.inputTokens,
      outputTokens: before.outputTokens + next.outputTokens,
    };
  }
  // An interrupt that came too late to matter (the turn had finished) changes nothing.
  if (state.interruptedWhileWaiting.delete(turn.turn_id) && deferredOnce) interrupted = true;
  state.stopBeforeStart.delete(turn.turn_id);
  if (interrupted && outcome.status === 'succeeded') {
    outcome = {
      ...outcome,
      status: 'interrupted',
      error: { code: 'INTERRUPTED', message: 'interrupted while a tool call waited for approval (the call was denied)' },
    };
  }
  return outcome;
}
