/**
 * @module turns/engine
 * The turn engine: one actor per active session takes that session's queued turns one at a
 * time (oldest first), waits for an admission slot, runs the turn through the Claude runner,
 * stores every SDK message in the session's event log and records the outcome. Two turns of
 * one session never run at once: the actor is the only writer, and the database refuses a
 * second running row even if something else tried.
 *
 * The folder reads like the design: `submit` (three paths in), `actors` (one loop per session),
 * `run-turn` (one turn), `approval-wait` (a deferred tool call), `interrupt`, `admission` and
 * `bounds` (slots and 429s), `waiters` (who waits for an end), `replica` (restarts and other
 * replicas), `state` (what they share).
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../../errors.js';
import { monotonicNow } from '../../clock.js';
import type { SessionRow } from '../../storage/sessions-repo.js';
import type { TurnRow } from '../../storage/turns-repo.js';
import type { TurnEngineDeps, EngineContext } from './deps.js';
import { createAdmission } from './admission.js';
import { createTurnBounds } from './bounds.js';
import { createTurnWaiters } from './waiters.js';
import { EngineState } from './state.js';
import { createInterrupt } from './interrupt.js';
import { createRunTurn } from './run-turn.js';
import { createActors } from './actors.js';
import { createSubmit, type SubmitInput } from './submit.js';
import { createReplicaHooks, type ReplicaHooks } from './replica.js';
import { announceEnd } from './outcome.js';

export type { TurnEngineDeps, ApprovalWaits } from './deps.js';
export type { SubmitInput } from './submit.js';
export type { ReplicaHooks, WaitingTurn } from './replica.js';

export interface TurnEngine {
  /** Queues a turn on a session (checked by the caller) and starts its actor. */
  submit(session: SessionRow, input: SubmitInput): Promise<TurnRow>;
  /** Resolves with the turn's row once it has ended. */
  waitFor(turnId: string): Promise<TurnRow>;
  /** Interrupts the running turn of a session; the turn row, or null when none runs. */
  interrupt(sessionId: string): Promise<TurnRow | null>;
  /** Cancels a queued turn. */
  cancel(turn: TurnRow): Promise<TurnRow>;
  /** A session id for a new session: bound to a prewarmed spare when one is ready. */
  /** A new session's id: one bound to a prewarmed spare when `spare` (its options let a spare serve it) and one is ready. */
  newSessionId(spare?: boolean): string;
  /** Lets a session's warm process go (deleted session). */
  release(sessionId: string): void;
  /** Restarts and other replicas (start-up recovery and the cluster call these). */
  readonly replica: ReplicaHooks;
  /** Stops taking turns (503), waits for running ones up to `graceMs`, then stops them and waits for their rows. */
  stop(graceMs: number): Promise<void>;
  stats(): { running: number; waiting: number; queued: number; actors: number };
}

export function createTurnEngine(deps: TurnEngineDeps): TurnEngine {
  const state = new EngineState(deps.runningTurns);
  const ctx: EngineContext = {
    ...deps,
    state,
    admission: createAdmission(deps.limits.maxConcurrent, deps.limits.userMaxConcurrent),
    bounds: createTurnBounds(deps.limits.maxQueued, deps.limits.userMaxConcurrent),
    waiters: createTurnWaiters(deps.turns, deps.cluster),
  };
  const { turns, runner, log, bounds, waiters } = ctx;
  const interruptTurn = createInterrupt(ctx);
  const kick = createActors(ctx, createRunTurn(ctx));
  const submit = createSubmit(ctx, kick, interruptTurn);
  const replica = createReplicaHooks(ctx, kick, interruptTurn);
  // Other replicas' messages about turns (queued, finished, interrupt).
  deps.cluster.onMessage((m) => replica.onMessage(m));

  return {
    submit,
    waitFor: (turnId) => waiters.waitFor(turnId),
    replica,

    async interrupt(sessionId) {
      // A turn whose prompt went first: its row is on its way.
      await state.rowPending.get(sessionId)?.catch(() => {});
      const runningId = (await turns.runningBySession([sessionId])).get(sessionId);
      const running = runningId ? await turns.get(runningId) : undefined;
      if (!running) return null;
      // Interrupting denies what is pending (a tool call deferred for approval is then reported
      // to the model as denied, and the turn ends interrupted); on another replica, that one does.
      await interruptTurn(sessionId, running.turn_id, 'interrupted by a client', running.runner_id);
      return (await turns.get(running.turn_id)) ?? null;
    },

    async cancel(turn) {
      if (turn.status === 'running') throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} is running; interrupt it instead`);
      if (turn.status !== 'queued') throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} has already ended (${turn.status})`);
      if (!(await turns.cancelQueued(turn.turn_id, monotonicNow()))) {
        const now = await turns.get(turn.turn_id);
        throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} is ${now?.status ?? 'gone'} and can no longer be cancelled`);
      }
      bounds.untrack(turn.turn_id);
      // Cancelled while its submission writes its `queued` event: that event comes first.
      await state.announcing.get(turn.turn_id);
      const row = (await turns.get(turn.turn_id))!;
      ctx.metrics.turnFinished('cancelled', 0);
      await announceEnd(ctx.events, row);
      waiters.ended(row);
      return row;
    },

    newSessionId(spare = true) {
      return (spare ? runner.reserveSpare() : null) ?? randomUUID();
    },

    release(sessionId) {
      runner.release(sessionId);
      // A turn still running or waiting here keeps the lease; the heartbeat gives it back later.
      if (state.actors.has(sessionId) || state.current.has(sessionId) || state.waitingApproval.has(sessionId)) return;
      ctx.cluster.release(sessionId).catch((err: unknown) => log.warn({ err, session_id: sessionId }, 'could not release a lease'));
    },

    async stop(graceMs) {
      if (!state.draining) {
        state.draining = true;
        // Sessions with nothing running here may be taken up by another replica at once.
        const busyHere = new Set([...state.actors.keys(), ...state.waitingApproval.keys()]);
        ctx.cluster.releaseExcept(busyHere).catch((err: unknown) => log.warn({ err }, 'could not give back leases'));
      }
      const deadline = Date.now() + graceMs;
      while (runner.stats().busy > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (runner.stats().busy > 0) log.warn({ turns: runner.stats().busy }, 'grace period over: stopping running turns');
      await runner.closeAll();
      // Let the actors write the outcome of what was stopped before storage closes. Turns that
      // wait for an approval stay running: the next start takes them up.
      const busyActors = [...state.actors.entries()].filter(([id]) => !state.waitingApproval.has(id)).map(([, a]) => a.done);
      await Promise.race([Promise.all(busyActors), new Promise((r) => setTimeout(r, 5_000))]);
    },

    stats() {
      return { running: ctx.admission.running, waiting: ctx.admission.waiting, queued: bounds.queued, actors: state.actors.size };
    },
  };
}
