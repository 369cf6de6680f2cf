/**
 * @module turns/engine/interrupt
 * Stops the running turn of a session. A turn whose tool call is deferred is not stopped in the
 * CLI: the pending request is denied, the CLI reports the denial to the model (which keeps the
 * transcript whole), and the turn ends interrupted. A turn running on another replica is
 * stopped by that one.
 */
import type { EngineContext } from './deps.js';

export type InterruptTurn = (sessionId: string, turnId: string, why: string, runnerId?: string | null) => Promise<void>;

export function createInterrupt(ctx: EngineContext): InterruptTurn {
  const { state } = ctx;
  return async (sessionId, turnId, why, runnerId) => {
    if (runnerId && runnerId !== ctx.runnerId) {
      ctx.cluster.publish({ k: 'interrupt', s: sessionId, t: turnId });
      return;
    }
    state.interruptedWhileWaiting.add(turnId);
    const denied = await ctx.approvals.denyPending(sessionId, 'interrupt');
    if (denied === 0 && state.waitingApproval.get(sessionId) === turnId) {
      // Decided meanwhile (perhaps on another replica, its notice not here yet): wake the turn.
      await ctx.approvals.recheckAll();
      return;
    }
    if (denied === 0 && !(await ctx.runner.interrupt(sessionId, { code: 'INTERRUPTED', message: why }))) {
      if (state.current.get(sessionId) === turnId || state.actors.has(sessionId)) state.stopBeforeStart.add(turnId);
      else state.interruptedWhileWaiting.delete(turnId);
    }
  };
}
