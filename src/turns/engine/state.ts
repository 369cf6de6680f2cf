/**
 * @module turns/engine/state
 * What this process knows about the turns it runs, shared by the engine's modules. Each map has
 * one writer (named on it); the others only read.
 */

/** A session's actor: the loop that runs its turns one at a time. */
export interface Actor {
  /** Set when something was queued while the actor looked: it looks again before it ends. */
  again: boolean;
  done: Promise<void>;
}

export class EngineState {
  /** Sessions with an actor (actors.ts). */
  readonly actors = new Map<string, Actor>();
  /** The turn running in each session (run-turn.ts); read by the tool-approval hook. */
  readonly current: Map<string, string>;
  /** Sessions whose turn waits for a person to decide a tool call (approval-wait.ts). */
  readonly waitingApproval = new Map<string, string>();
  /** Turns interrupted while (or just before) they waited for an approval. */
  readonly interruptedWhileWaiting = new Set<string>();
  /** Running turns interrupted before their prompt reached a process: they end without running. */
  readonly stopBeforeStart = new Set<string>();
  /** Submissions in progress, by session (submit.ts). */
  readonly submitting = new Map<string, number>();
  /** The row being written of a turn whose prompt went to the CLI first, by session (submit.ts). */
  readonly rowPending = new Map<string, Promise<unknown>>();
  /**
   * Turns being submitted, until their `queued` event is in the log (submit.ts): an actor that takes
   * one meanwhile (its session's last turn winding down) waits for it before the turn's `running`.
   */
  readonly announcing = new Map<string, Promise<void>>();
  /** Sessions whose prompt-first row was refused once: their turns are written first from then on. */
  readonly writeFirst = new Set<string>();
  /** Shutting down: no new turns, actors stop after their current one. */
  draining = false;

  constructor(current: Map<string, string> = new Map()) {
    this.current = current;
  }

  /** The session no longer runs a turn here. */
  idle(sessionId: string): void {
    this.current.delete(sessionId);
    this.waitingApproval.delete(sessionId);
  }
}

/** Resolves once the promise steps already queued have run (the next turn of the event loop). */
export const afterPendingWork = () => new Promise<void>((r) => setImmediate(r));
