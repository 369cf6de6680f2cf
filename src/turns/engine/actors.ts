/**
 * @module turns/engine/actors
 * One actor per active session takes that session's queued turns one at a time (oldest first):
 * it takes the session's lease, waits for an admission slot, claims the turn (the database
 * refuses a second running turn) and runs it. Two turns of one session never run at once.
 */
import { monotonicNow } from '../../clock.js';
import type { SessionRow } from '../../storage/sessions-repo.js';
import type { TurnRow } from '../../storage/turns-repo.js';
import type { EngineContext } from './deps.js';
import { holdSlot } from './admission.js';
import type { Actor } from './state.js';
import type { RunTurn } from './run-turn.js';

/** A turn already written as running (idle session, free slot, or taken up): the actor runs it first. */
export interface Claimed {
  turn: TurnRow;
  session: SessionRow;
  release: (() => void) | null;
  /** A turn of an earlier run that waits for the approval of this deferred tool call. */
  waitingFor?: string;
  /** A turn whose prompt went to the CLI before its row was written: the row, once it is (null: refused). */
  written?: Promise<TurnRow | null>;
}

/** Starts the session's actor, or tells a running one to look again. */
export type Kick = (sessionId: string, first?: Claimed) => void;

export function createActors(ctx: EngineContext, runTurn: RunTurn): Kick {
  const { state, turns, bounds } = ctx;

  async function loop(sessionId: string, actor: Actor, first?: Claimed) {
    if (first) {
      const slot = holdSlot(ctx.admission, first.turn.user_id, first.release);
      try {
        await runTurn({
          turn: first.turn,
          startedAt: Number(first.turn.started_at),
          slot,
          session: first.session,
          waitingFor: first.waitingFor,
          written: first.written,
        });
      } finally {
        bounds.untrack(first.turn.turn_id);
        slot.release();
      }
    }
    for (;;) {
      actor.again = false;
      if (state.draining) return;
      // With one process every queued turn is counted here, and one queued after this look kicks
      // the actor again: none counted, none to read (the common case after a turn, spared a query
      // while its answer goes out).
      const next = !ctx.cluster.shared && !bounds.hasQueued(sessionId) ? undefined : await turns.nextQueued(sessionId);
      if (!next) {
        if (actor.again) continue;
        return;
      }
      if (!(await ctx.cluster.acquire(sessionId))) {
        // Another replica runs this session: it takes its queued turns, and what this one kept
        // warm for it is out of date.
        ctx.runner.discardWarm(sessionId);
        return;
      }
      const slot = holdSlot(ctx.admission, next.user_id, await ctx.admission.acquire(next.user_id));
      if (state.draining) {
        // Shutting down: what is still queued stays queued, for the next start.
        slot.release();
        return;
      }
      try {
        const startedAt = monotonicNow();
        if (!(await turns.claim(next.turn_id, startedAt, ctx.runnerId))) {
          // Cancelled while it waited, or another writer holds the session: look again.
          const now = await turns.get(next.turn_id);
          if (now?.status === 'queued') {
            // Another turn holds the session for a moment (a fast-path turn giving way, or another
            // replica's): look again shortly rather than leave this one waiting for a kick.
            slot.release();
            await new Promise((r) => setTimeout(r, 100));
          }
          continue;
        }
        bounds.started(next.turn_id, next.user_id, next.session_id);
        // Taken while its submission was still writing its `queued` event: that event comes first.
        const announcing = state.announcing.get(next.turn_id);
        if (announcing) await announcing;
        try {
          await runTurn({ turn: next, startedAt, slot });
        } finally {
          bounds.untrack(next.turn_id);
        }
      } finally {
        slot.release();
      }
    }
  }

  const kick: Kick = (sessionId, first) => {
    const existing = state.actors.get(sessionId);
    if (existing) {
      existing.again = true;
      return;
    }
    const actor: Actor = { again: false, done: Promise.resolve() };
    state.actors.set(sessionId, actor);
    actor.done = loop(sessionId, actor, first)
      .catch((err: unknown) => ctx.log.error({ err, session_id: sessionId }, 'session actor failed'))
      .finally(() => {
        if (state.actors.get(sessionId) === actor) state.actors.delete(sessionId);
        if (actor.again && !state.draining) kick(sessionId);
      });
  };
  return kick;
}
