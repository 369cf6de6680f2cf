/**
 * @module turns/engine
 * The turn engine: one actor per active session takes that session's queued turns one at a
 * time (oldest first), waits for an admission slot, runs the turn through the Claude runner,
 * stores every SDK message in the session's event log and records the outcome. Two turns of
 * one session never run at once: the actor is the only writer, and the database refuses a
 * second running row even if something else tried.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import { monotonicNow } from '../clock.js';
import type { ClaudeRunner, TurnOutcome } from '../claude/runner.js';
import type { PermissionMode } from '../claude/permission-mode.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';
import type { NewTurn, TurnRepository, TurnRow } from '../storage/turns-repo.js';
import type { EventLog } from './events.js';
import type { Admission } from './admission.js';
import { presentTurn } from './present.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Approvals } from '../permissions/service.js';

export type IfBusy = 'reject' | 'queue' | 'interrupt';

export interface SubmitInput {
  prompt: string;
  ifBusy: IfBusy;
  permissionMode: PermissionMode;
}

export interface TurnEngine {
  /** Queues a turn on a session (checked by the caller) and starts its actor. */
  submit(session: SessionRow, input: SubmitInput): Promise<TurnRow>;
  /** Resolves with the turn's row once it has finished. */
  waitFor(turnId: string): Promise<TurnRow>;
  /** Interrupts the running turn of a session; the turn row, or null when none runs. */
  interrupt(sessionId: string): Promise<TurnRow | null>;
  /** Cancels a queued turn. */
  cancel(turn: TurnRow): Promise<TurnRow>;
  /** A session id for a new session: bound to a prewarmed spare when one is ready. */
  newSessionId(): string;
  /** Lets a session's warm process go (deleted session). */
  release(sessionId: string): void;
  /** Starts the actors of sessions with turns queued by an earlier run. */
  resumeQueued(): Promise<void>;
  /** Takes up turns of an earlier run that wait for a tool approval (tool_use ids by turn). */
  resumeWaiting(waiting: Array<{ turnId: string; toolUseId: string }>): Promise<void>;
  /** The turn running in a session now (for the tool-approval hook). */
  currentTurn(sessionId: string): string | undefined;
  /** Stops taking turns (503); running ones go on. */
  drain(): void;
  /** Waits for running turns up to `graceMs`, then stops them and waits for their rows to be written. */
  stop(graceMs: number): Promise<void>;
  stats(): { running: number; waiting: number; queued: number; actors: number };
}

export interface TurnEngineDeps {
  sessions: SessionRepository;
  turns: TurnRepository;
  events: EventLog;
  runner: ClaudeRunner;
  admission: Admission;
  metrics: Metrics;
  log: FastifyBaseLogger;
  /** Turns that may wait (queued) in this process at most; 429 beyond. */
  maxQueued: number;
  /** Per-user cap on turns running or waiting for a slot; 429 beyond. */
  userMaxConcurrent?: number | undefined;
  /** Whether the session's transcript exists (on this disk or in the transcript store). */
  transcriptExists(session: SessionRow): Promise<boolean>;
  /** This server process, recorded on the turns it runs. */
  runnerId: string;
  /** Tool approvals: a deferred tool call waits for its request to be settled. */
  approvals: Pick<Approvals, 'settled' | 'denyPending' | 'revoke'>;
  /** After a session's first turn wrote its transcript. */
  onStarted?(session: SessionRow): Promise<void>;
}

interface Actor {
  again: boolean;
  done: Promise<void>;
}

/** A turn that was written as running at submission (idle session, free slot): run it first. */
interface Claimed {
  turn: TurnRow;
  session: SessionRow;
  release: (() => void) | null;
  /** A turn of an earlier run that waits for the approval of this deferred tool call. */
  waitingFor?: string;
}

/** An admission slot that a turn gives back while a person decides, and takes again after. */
interface Slot {
  release(): void;
  reacquire(): Promise<void>;
}

const busy = (sessionId: string) =>
  new AppError('SESSION_BUSY', `session ${sessionId} is running a turn; retry when it ends, or send if_busy "queue" or "interrupt"`);

export function createTurnEngine(d: TurnEngineDeps): TurnEngine {
  const { sessions, turns, events, runner, admission, metrics, log } = d;
  const actors = new Map<string, Actor>();
  const waiters = new Map<string, Array<(t: TurnRow) => void>>();
  let queued = 0;
  /** Running turns interrupted before their prompt reached a process: they end without running. */
  const stopBeforeStart = new Set<string>();
  /** Sessions whose turn waits for a person to approve a tool call, and turns interrupted then. */
  const waitingApproval = new Map<string, string>();
  const interruptedWhileWaiting = new Set<string>();
  const current = new Map<string, string>();

  /**
   * Stops the running turn of a session. A turn whose tool call is deferred is not stopped in
   * the CLI: the pending request is denied, the CLI reports the denial to the model (which
   * keeps the transcript whole), and the turn ends interrupted.
   */
  async function interruptTurn(sessionId: string, turnId: string, why: string) {
    interruptedWhileWaiting.add(turnId);
    const denied = await d.approvals.denyPending(sessionId, 'interrupt');
    if (denied === 0 && waitingApproval.get(sessionId) !== turnId && !(await runner.interrupt(sessionId, { code: 'INTERRUPTED', message: why }))) {
      stopBeforeStart.add(turnId);
    }
  }

  function holdSlot(userId: string, release: (() => void) | null): Slot {
    let rel = release;
    return {
      release() {
        rel?.();
        rel = null;
      },
      async reacquire() {
        if (!rel) rel = await admission.acquire(userId);
      },
    };
  }
  const activeByUser = new Map<string, number>();
  let draining = false;

  const bump = (userId: string, n: number) => {
    const v = (activeByUser.get(userId) ?? 0) + n;
    if (v <= 0) activeByUser.delete(userId);
    else activeByUser.set(userId, v);
  };

  function settle(row: TurnRow) {
    const ws = waiters.get(row.turn_id);
    waiters.delete(row.turn_id);
    for (const w of ws ?? []) w(row);
  }

  async function announceEnd(row: TurnRow) {
    const t = presentTurn(row);
    if (row.error_code && row.status !== 'cancelled') await events.append(row.session_id, row.turn_id, 'error', t.error);
    await events.append(row.session_id, row.turn_id, 'turn', t);
    await events.append(row.session_id, row.turn_id, 'done', t);
  }

  /** Runs a claimed turn; whatever breaks, the turn is recorded as failed and its waiters answered. */
  async function runClaimed(turn: TurnRow, startedAt: number, slot: Slot, fresh?: SessionRow, waitingFor?: string) {
    try {
      await runClaimedUnsafe(turn, startedAt, slot, fresh, waitingFor);
    } catch (err) {
      log.error({ err, turn_id: turn.turn_id }, 'turn bookkeeping failed; recording the turn as failed');
      current.delete(turn.session_id);
      waitingApproval.delete(turn.session_id);
      const at = monotonicNow();
      const failed: TurnRow = { ...turn, status: 'failed', started_at: startedAt, finished_at: at, duration_ms: at - startedAt, error_code: 'INTERNAL', error_message: 'the server could not record this turn' };
      try {
        await turns.update(turn.turn_id, { status: 'failed', finished_at: at, duration_ms: failed.duration_ms, error_code: 'INTERNAL', error_message: failed.error_message });
        await announceEnd(failed);
      } catch (err2) {
        log.error({ err: err2, turn_id: turn.turn_id }, 'could not record a failed turn');
      }
      settle(failed);
    }
  }

  async function runClaimedUnsafe(turn: TurnRow, startedAt: number, slot: Slot, fresh?: SessionRow, waitingFor?: string) {
    const session = fresh ?? (await sessions.get(turn.session_id))!;
    current.set(session.session_id, turn.turn_id);
    const running: TurnRow = { ...turn, status: 'running', started_at: startedAt };
    const announced = Promise.resolve(events.append(turn.session_id, turn.turn_id, 'turn', presentTurn(running))).catch((err) => {
      log.error({ err, turn_id: turn.turn_id }, 'could not announce a turn');
    });
    metrics.turnStarted();
    let firstEvent = 0;
    let outcome: TurnOutcome;
    const resume = Boolean(session.started);
    const patch: Parameters<SessionRepository['update']>[1] = { last_active: startedAt };
    if (session.first_prompt === null) patch.first_prompt = turn.prompt.slice(0, 1000);
    if (session.status === 'archived') patch.status = 'active';
    const spec = {
      sessionId: session.session_id,
      cwd: session.cwd,
      prompt: turn.prompt,
      resume,
      permissionMode: (turn.permission_mode ?? session.permission_mode) as PermissionMode,
      model: session.model,
      systemPrompt: session.system_prompt,
      title: session.session_name,
      onMessage: (m: unknown) => {
        if (!firstEvent) {
          firstEvent = Date.now();
          metrics.firstEvent((firstEvent - startedAt) / 1000);
        }
        return events.append(turn.session_id, turn.turn_id, 'message', m);
      },
    };
    const failure = (err: unknown): TurnOutcome => {
      const code = err instanceof AppError ? err.code : 'INTERNAL';
      if (code === 'INTERNAL') log.error({ err, turn_id: turn.turn_id }, 'turn failed');
      return { status: 'failed', result: null, error: { code, message: (err as Error).message }, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs: Date.now() - startedAt };
    };
    if (waitingFor) {
      // Taken up after a restart: the CLI deferred this tool call before the server stopped.
      outcome = { status: 'succeeded', result: null, error: null, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs: 0, deferred: { id: waitingFor, name: '', input: {} } };
    } else if (stopBeforeStart.delete(turn.turn_id)) {
      outcome = { status: 'interrupted', result: null, error: { code: 'INTERRUPTED', message: 'interrupted by a client before it started' }, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs: 0 };
      await sessions.update(session.session_id, patch);
    } else if (resume && !(await d.transcriptExists(session))) {
      outcome = { status: 'failed', result: null, error: { code: 'TRANSCRIPT_MISSING', message: 'the transcript vanished before this turn ran' }, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs: 0 };
      await sessions.update(session.session_id, patch);
    } else {
      // The prompt goes to the CLI first; the bookkeeping is written while it works.
      const run = runner.runTurn(spec);
      try {
        await announced;
        await sessions.update(session.session_id, patch);
      } catch (err) {
        log.error({ err, turn_id: turn.turn_id }, 'could not record the start of a turn');
      }
      try {
        outcome = await run;
      } catch (err) {
        outcome = failure(err);
      }
    }
    // A tool call deferred for approval: wait for a person (holding no slot), then resume the
    // session, whose CLI runs the call (or reports its denial) and goes on.
    let interrupted = false;
    let deferredOnce = false;
    while (outcome.status === 'succeeded' && outcome.deferred) {
      deferredOnce = true;
      // An interrupt that raced the deferral: what was asked meanwhile is denied too.
      if (interruptedWhileWaiting.has(turn.turn_id)) await d.approvals.denyPending(session.session_id, 'interrupt');
      slot.release();
      waitingApproval.set(session.session_id, turn.turn_id);
      await d.approvals.settled(session.session_id, outcome.deferred.id);
      waitingApproval.delete(session.session_id);
      if (interruptedWhileWaiting.delete(turn.turn_id)) interrupted = true;
      await slot.reacquire();
      if (interruptedWhileWaiting.delete(turn.turn_id) || stopBeforeStart.delete(turn.turn_id)) {
        // Interrupted after the decision, before the call ran: it is denied after all.
        interrupted = true;
        await d.approvals.revoke(session.session_id, outcome.deferred.id, 'interrupt');
      }
      const before = outcome;
      let next: TurnOutcome;
      try {
        next = await runner.runTurn({ ...spec, resume: true, continueDeferred: true });
      } catch (err) {
        next = failure(err);
      }
      outcome = { ...next, costUsd: before.costUsd + next.costUsd, inputTokens: before.inputTokens + next.inputTokens, outputTokens: before.outputTokens + next.outputTokens };
    }
    // An interrupt that came too late to matter (the turn had finished) changes nothing.
    if (interruptedWhileWaiting.delete(turn.turn_id) && deferredOnce) interrupted = true;
    stopBeforeStart.delete(turn.turn_id);
    if (interrupted && outcome.status === 'succeeded') {
      outcome = { ...outcome, status: 'interrupted', error: { code: 'INTERRUPTED', message: 'interrupted while a tool call waited for approval (the call was denied)' } };
    }
    current.delete(session.session_id);
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
    };
    await turns.update(turn.turn_id, {
      status: done.status,
      result: done.result,
      error_code: done.error_code,
      error_message: done.error_message,
      finished_at: done.finished_at,
      duration_ms: done.duration_ms,
      cost_usd: done.cost_usd,
      input_tokens: done.input_tokens,
      output_tokens: done.output_tokens,
    });
    const startedNow = !session.started && (await d.transcriptExists(session));
    await sessions.addTurn(session.session_id, { at: finished, costUsd: outcome.costUsd, inputTokens: outcome.inputTokens, outputTokens: outcome.outputTokens, started: startedNow });
    if (startedNow) await d.onStarted?.(session);
    metrics.turnFinished(done.status, (done.duration_ms ?? 0) / 1000);
    await announceEnd(done);
    settle(done);
  }

  async function loop(sessionId: string, actor: Actor, first?: Claimed) {
    if (first) {
      const slot = holdSlot(first.turn.user_id, first.release);
      try {
        await runClaimed(first.turn, Number(first.turn.started_at), slot, first.session, first.waitingFor);
      } finally {
        bump(first.turn.user_id, -1);
        slot.release();
      }
    }
    for (;;) {
      actor.again = false;
      if (draining) return;
      const next = await turns.nextQueued(sessionId);
      if (!next) {
        if (actor.again) continue;
        return;
      }
      const slot = holdSlot(next.user_id, await admission.acquire(next.user_id));
      if (draining) {
        // Shutting down: what is still queued stays queued, for the next start.
        slot.release();
        return;
      }
      try {
        const startedAt = monotonicNow();
        if (!(await turns.claim(next.turn_id, startedAt, d.runnerId))) {
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
        queued--;
        try {
          await runClaimed(next, startedAt, slot);
        } finally {
          bump(next.user_id, -1);
        }
      } finally {
        slot.release();
      }
    }
  }

  function kick(sessionId: string, first?: Claimed) {
    const existing = actors.get(sessionId);
    if (existing) {
      existing.again = true;
      return;
    }
    const actor: Actor = { again: false, done: Promise.resolve() };
    actors.set(sessionId, actor);
    actor.done = loop(sessionId, actor, first)
      .catch((err) => log.error({ err, session_id: sessionId }, 'session actor failed'))
      .finally(() => {
        if (actors.get(sessionId) === actor) actors.delete(sessionId);
        if (actor.again && !draining) kick(sessionId);
      });
  }

  return {
    async submit(session, input) {
      if (draining) throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
      if (queued >= d.maxQueued) {
        throw new AppError('CAPACITY_EXCEEDED', `${queued} turns are already waiting; try again shortly`, { retryAfter: 5 });
      }
      if (d.userMaxConcurrent !== undefined && (activeByUser.get(session.user_id) ?? 0) >= d.userMaxConcurrent) {
        throw new AppError('CAPACITY_EXCEEDED', `user ${session.user_id} already has ${d.userMaxConcurrent} turns running or waiting`, { retryAfter: 5 });
      }
      const now = monotonicNow();
      const base: NewTurn = {
        turn_id: randomUUID(),
        session_id: session.session_id,
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
      };
      // Fast path: an idle session and a free slot. The turn is written as running (the database
      // refuses it if another one runs) and its prompt reaches the CLI without more round trips.
      if (!actors.has(session.session_id)) {
        const release = admission.tryAcquire(session.user_id);
        if (release) {
          let claimed: TurnRow | null = null;
          try {
            claimed = await turns.insert({ ...base, status: 'running', started_at: now, runner_id: d.runnerId });
          } catch (err) {
            release();
            throw err;
          }
          // A turn queued just before (its actor not started yet) goes first: this one waits its turn.
          if (claimed && (await turns.unfinishedBefore(session.session_id, claimed.seq)).length > 0) {
            release();
            await turns.update(claimed.turn_id, { status: 'queued', started_at: null, runner_id: null });
            kick(session.session_id); // the earlier turn's actor may have seen this one as running
            return queue({ ...claimed, status: 'queued', started_at: null, runner_id: null });
          }
          if (claimed && !actors.has(session.session_id)) {
            bump(session.user_id, 1);
            metrics.turnQueued();
            kick(session.session_id, { turn: claimed, session, release });
            return claimed;
          }
          release();
          if (claimed) {
            // An actor appeared meanwhile: hand the turn back to the queue.
            await turns.update(claimed.turn_id, { status: 'queued', started_at: null, runner_id: null });
            return queue({ ...claimed, status: 'queued', started_at: null, runner_id: null });
          }
          if (input.ifBusy === 'reject') throw busy(session.session_id);
        }
      }
      const row = await turns.insert(base);
      if (!row) throw new Error('a queued turn could not be written');
      return queue(row);

      async function queue(row: TurnRow): Promise<TurnRow> {
      const earlier = await turns.unfinishedBefore(session.session_id, row.seq);
      // Refused only if it is still queued: had the earlier turn just ended, it may be running now.
      if (earlier.length > 0 && input.ifBusy === 'reject' && (await turns.removeQueued(row.turn_id))) throw busy(session.session_id);
      queued++;
      bump(session.user_id, 1);
      metrics.turnQueued();
      await sessions.update(session.session_id, { last_active: now });
      await events.append(session.session_id, row.turn_id, 'turn', presentTurn(row));
      const runningTurn = earlier.find((t) => t.status === 'running');
      if (input.ifBusy === 'interrupt' && runningTurn) await interruptTurn(session.session_id, runningTurn.turn_id, 'interrupted by a newer turn (if_busy: interrupt)');
      kick(session.session_id);
      return row;
      }
    },

    waitFor(turnId) {
      return new Promise<TurnRow>((resolve, reject) => {
        const list = waiters.get(turnId) ?? [];
        list.push(resolve);
        waiters.set(turnId, list);
        // It may have finished before we started waiting.
        turns
          .get(turnId)
          .then((row) => {
            if (row && ['succeeded', 'failed', 'interrupted', 'cancelled'].includes(row.status)) settle(row);
          })
          .catch(reject);
      });
    },

    async interrupt(sessionId) {
      const running = (await turns.runningBySession([sessionId])).get(sessionId);
      if (!running) return null;
      // Interrupting denies what is pending (a tool call deferred for approval is then reported
      // to the model as denied, and the turn ends interrupted).
      // A turn whose tool call is deferred is not stopped in the CLI: the denial is, and the
      // CLI reports it to the model, which keeps the transcript whole.
      interruptedWhileWaiting.add(running);
      const denied = await d.approvals.denyPending(sessionId, 'interrupt');
      if (denied === 0 && waitingApproval.get(sessionId) !== running && !(await runner.interrupt(sessionId, { code: 'INTERRUPTED', message: 'interrupted by a client' }))) {
        stopBeforeStart.add(running);
      }
      return (await turns.get(running)) ?? null;
    },

    async cancel(turn) {
      if (turn.status === 'running') throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} is running; interrupt it instead`);
      if (turn.status !== 'queued') throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} has already ended (${turn.status})`);
      const at = monotonicNow();
      if (!(await turns.cancelQueued(turn.turn_id, at))) {
        const now = await turns.get(turn.turn_id);
        throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} is ${now?.status ?? 'gone'} and can no longer be cancelled`);
      }
      queued--;
      bump(turn.user_id, -1);
      const row = (await turns.get(turn.turn_id))!;
      metrics.turnFinished('cancelled', 0);
      await announceEnd(row);
      settle(row);
      return row;
    },

    newSessionId() {
      return runner.reserveSpare() ?? randomUUID();
    },

    release(sessionId) {
      runner.release(sessionId);
    },

    async resumeQueued() {
      for (const sessionId of await turns.sessionsWithQueued()) {
        const rows = await turns.listBySession(sessionId, { status: 'queued', limit: 10_000 });
        queued += rows.length;
        for (const r of rows) bump(r.user_id, 1);
        kick(sessionId);
      }
    },

    async resumeWaiting(waiting) {
      for (const w of waiting) {
        const turn = await turns.get(w.turnId);
        if (!turn || turn.status !== 'running' || actors.has(turn.session_id)) continue;
        const session = await sessions.get(turn.session_id);
        if (!session) continue;
        bump(turn.user_id, 1);
        kick(turn.session_id, { turn, session, release: null, waitingFor: w.toolUseId });
      }
    },

    currentTurn(sessionId) {
      return current.get(sessionId);
    },

    drain() {
      draining = true;
    },

    async stop(graceMs) {
      draining = true;
      const deadline = Date.now() + graceMs;
      while (runner.stats().busy > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (runner.stats().busy > 0) log.warn({ turns: runner.stats().busy }, 'grace period over: stopping running turns');
      await runner.closeAll();
      // Let the actors write the outcome of what was stopped before storage closes. Turns that
      // wait for an approval stay running: the next start takes them up.
      const busyActors = [...actors.entries()].filter(([id]) => !waitingApproval.has(id)).map(([, a]) => a.done);
      await Promise.race([Promise.all(busyActors), new Promise((r) => setTimeout(r, 5_000))]);
    },

    stats() {
      return { running: admission.running, waiting: admission.waiting, queued, actors: actors.size };
    },
  };
}
