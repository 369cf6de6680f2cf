/**
 * @module turns/engine/replica
 * The engine's side of several replicas and of restarts: turns queued or waiting for approval
 * from an earlier run are taken up; other replicas' messages (queued, finished, interrupt) are
 * acted on; leases lost or taken change what runs here; a periodic sweep fails the running
 * turns of replicas that are gone and runs their queued ones.
 */
import { monotonicNow } from '../../clock.js';
import type { ClusterMessage } from '../../cluster/cluster.js';
import type { EngineContext } from './deps.js';
import type { Kick } from './actors.js';
import type { InterruptTurn } from './interrupt.js';
import { announceEnd } from './outcome.js';

export interface WaitingTurn {
  turnId: string;
  /** The deferred tool call it waits on. */
  toolUseId: string;
}

/** What the cluster calls (its `start` hooks) and what start-up recovery calls. */
export interface ReplicaHooks {
  /** Starts the actors of sessions with turns queued by an earlier run. */
  resumeQueued(): Promise<void>;
  /** Takes up turns of an earlier run that wait for a tool approval. */
  resumeWaiting(waiting: WaitingTurn[]): Promise<void>;
  /** Another replica's message. */
  onMessage(m: ClusterMessage): void;
  /** Sessions with something live here (an actor, a process, a turn waiting for approval). */
  active(): Set<string>;
  /** Leases another replica took over: stop what runs here for those sessions. */
  lost(sessionIds: string[]): void;
  /** A lease newly taken by this replica: a process it kept for the session is out of date. */
  taken(sessionId: string): void;
  /** Notices from other replicas may have been lost: whatever waits here looks again. */
  resync(): void;
  /** Takes up what dead replicas left: fails their running turns, runs their queued ones. */
  sweep(): Promise<void>;
}

export function createReplicaHooks(ctx: EngineContext, kick: Kick, interruptTurn: InterruptTurn): ReplicaHooks {
  const { state, turns, bounds, waiters, log } = ctx;

  async function resumeWaiting(waiting: WaitingTurn[]) {
    for (const w of waiting) {
      const turn = await turns.get(w.turnId);
      if (!turn || turn.status !== 'running' || state.actors.has(turn.session_id)) continue;
      const session = await ctx.sessions.get(turn.session_id);
      if (!session || !(await ctx.cluster.acquire(turn.session_id))) continue;
      // Taken up here: this replica records its end (unless another one took it up meanwhile).
      if (turn.runner_id !== ctx.runnerId && !(await turns.reassign(turn.turn_id, turn.runner_id, ctx.runnerId))) continue;
      bounds.track(turn.turn_id, turn.user_id, false, turn.session_id);
      kick(turn.session_id, { turn: { ...turn, runner_id: ctx.runnerId }, session, release: null, waitingFor: w.toolUseId });
    }
  }

  return {
    async resumeQueued() {
      for (const sessionId of await turns.sessionsWithQueued()) {
        // Another live replica's session: that one runs (and counts) its queued turns.
        if (!(await ctx.cluster.acquire(sessionId))) continue;
        const rows = await turns.listBySession(sessionId, { status: 'queued', limit: 10_000 });
        for (const r of rows) bounds.track(r.turn_id, r.user_id, true, r.session_id);
        kick(sessionId);
      }
    },

    resumeWaiting,

    onMessage(m) {
      if (m.k === 'queued' && ctx.cluster.holds(m.s) && !state.draining) kick(m.s);
      else if (m.k === 'finished') {
        // Queued here, run elsewhere: it no longer counts against this replica's bounds.
        bounds.untrack(m.t);
        if (waiters.has(m.t)) void waiters.recheck(m.t).catch(() => {});
      } else if (m.k === 'interrupt' && (state.current.get(m.s) === m.t || state.waitingApproval.get(m.s) === m.t)) {
        void interruptTurn(m.s, m.t, 'interrupted by a client (through another replica)').catch((err: unknown) =>
          log.error({ err, turn_id: m.t }, 'could not interrupt a turn'),
        );
      }
    },

    active() {
      return new Set([...state.actors.keys(), ...state.waitingApproval.keys(), ...ctx.runner.liveSessions()]);
    },

    lost(ids) {
      for (const id of ids) {
        ctx.runner.release(id);
        // A turn still running here is another replica's business now: stop it.
        if (state.current.has(id)) void ctx.runner.interrupt(id, { code: 'REPLICA_LOST', message: 'another replica took this session over' });
      }
    },

    taken(sessionId) {
      if (!state.actors.has(sessionId)) ctx.runner.discardWarm(sessionId);
    },

    resync() {
      waiters.recheckAll();
      void ctx.approvals.recheckAll().catch(() => {});
    },

    async sweep() {
      if (state.draining) return;
      // What waits here for another replica's notice looks again (a notice may have been lost).
      await ctx.approvals.recheckAll();
      const counted = bounds.counted();
      if (counted.length > 0) {
        const ended = await turns.endedAmong(counted);
        for (const id of ended) bounds.untrack(id);
        for (const id of ended) if (waiters.has(id)) void waiters.recheck(id).catch(() => {});
      }
      for (const t of await turns.abandonedRunning(ctx.runnerId, 50)) {
        if (state.actors.has(t.session_id) || !(await ctx.cluster.acquire(t.session_id))) continue;
        const pending = (await ctx.approvals.adopt(t.session_id)).filter((p) => p.turn_id === t.turn_id);
        if (pending.length > 0) {
          // Waiting for a person: the transcript holds the deferred call, so the turn goes on here.
          log.warn({ turn_id: t.turn_id, from: t.runner_id }, 'taking up a turn that waits for approval from a replica that is gone');
          await resumeWaiting([{ turnId: t.turn_id, toolUseId: pending[0]!.tool_use_id }]);
          continue;
        }
        const at = monotonicNow();
        const failed = await turns.takeOver(t.turn_id, t.runner_id, ctx.runnerId, {
          status: 'failed',
          finished_at: at,
          duration_ms: t.started_at === null ? null : at - Number(t.started_at),
          error_code: 'REPLICA_LOST',
          error_message: 'the replica running this turn stopped answering; its lease expired and another replica took the session over',
        });
        if (!failed) continue;
        log.warn({ turn_id: t.turn_id, session_id: t.session_id, from: t.runner_id }, 'failed a turn of a replica that is gone');
        ctx.metrics.turnFinished('failed', 0);
        await announceEnd(ctx.events, failed);
        waiters.ended(failed);
        kick(t.session_id);
      }
      for (const id of await turns.queuedUnowned(ctx.runnerId, 100)) if (!state.actors.has(id)) kick(id);
    },
  };
}
