/**
 * @module turns/engine
 * The turn engine: one actor per active session takes that session's queued turns one at a
 * time (oldest first), waits for an admission slot, runs the turn through the Claude runner,
 * stores every SDK message in the session's event log and records the outcome. Two turns of
 * one session never run at once: the actor is the only writer, and the database refuses a
 * second running row even if something else tried.
 * Over 400 lines for now: its split into admission, submission, the actor, one turn's run, the
 * approval wait and the replica hooks is issue 14, step 1 (still open).
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
import type { Cluster, ClusterMessage } from '../cluster/cluster.js';

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
  /** Lets the engine react to another replica's message. */
  onClusterMessage(m: ClusterMessage): void;
  /** Sessions with something live here (an actor, a process, a turn waiting for approval). */
  activeSessions(): Set<string>;
  /** Leases another replica took over: stop what runs here for those sessions. */
  leasesLost(sessionIds: string[]): void;
  /** Takes up what dead replicas left: fails their running turns, runs their queued ones. */
  sweep(): Promise<void>;
  /** Whether this process is running (or about to run, or waiting on) a turn of the session. */
  busy(sessionId: string): boolean;
  /** A lease newly taken by this replica: a process it kept for the session is out of date. */
  leaseTaken(sessionId: string): void;
  /** Notices from other replicas may have been lost: whatever waits here looks again. */
  resync(): void;
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
  approvals: Pick<Approvals, 'settled' | 'denyPending' | 'revoke' | 'adopt' | 'recheckAll'>;
  /** The replicas' leases and messages (with SQLite, a cluster of one). */
  cluster: Cluster;
  /** Before a session is resumed in a new process (the transcript store copies a local-only transcript). */
  prepareResume?(session: SessionRow): Promise<void>;
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
  /** A turn whose prompt went to the CLI before its row was written: the row, once it is (null: refused). */
  written?: Promise<TurnRow | null>;
}

/** An admission slot that a turn gives back while a person decides, and takes again after. */
interface Slot {
  release(): void;
  reacquire(): Promise<void>;
}

const busy = (sessionId: string) =>
  new AppError('SESSION_BUSY', `session ${sessionId} is running a turn; retry when it ends, or send if_busy "queue" or "interrupt"`);

/** Resolves once the promise steps already queued have run (the next turn of the event loop). */
const afterPendingWork = () => new Promise<void>((r) => setImmediate(r));

export function createTurnEngine(d: TurnEngineDeps): TurnEngine {
  const { sessions, turns, events, runner, admission, metrics, log } = d;
  const actors = new Map<string, Actor>();
  const waiters = new Map<string, Array<(t: TurnRow) => void>>();
  let queued = 0;
  /** Turns being written to wait (not yet counted in `queued`). */
  let enqueuing = 0;
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
  async function interruptTurn(sessionId: string, turnId: string, why: string, runnerId?: string | null) {
    if (runnerId && runnerId !== d.runnerId) {
      // Running on another replica: that one stops it.
      d.cluster.publish({ k: 'interrupt', s: sessionId, t: turnId });
      return;
    }
    interruptedWhileWaiting.add(turnId);
    const denied = await d.approvals.denyPending(sessionId, 'interrupt');
    if (denied === 0 && waitingApproval.get(sessionId) === turnId) {
      // Decided meanwhile (perhaps on another replica, its notice not here yet): wake the turn.
      await d.approvals.recheckAll();
      return;
    }
    if (denied === 0 && !(await runner.interrupt(sessionId, { code: 'INTERRUPTED', message: why }))) {
      if (current.get(sessionId) === turnId || actors.has(sessionId)) stopBeforeStart.add(turnId);
      else interruptedWhileWaiting.delete(turnId);
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
  /**
   * Turns this replica counts against its bounds: queued here (MAX_QUEUED_TURNS) and running
   * or waiting here (the per-user cap). A turn queued here for a session another replica holds
   * is counted by the replica that runs it, once it runs.
   */
  const tracked = new Map<string, { userId: string; sessionId: string; queued: boolean }>();
  /** Turns queued here, by session (with one process, every queued turn of the database). */
  const queuedBySession = new Map<string, number>();
  const countQueued = (sessionId: string, n: number) => {
    queued += n;
    const v = (queuedBySession.get(sessionId) ?? 0) + n;
    if (v <= 0) queuedBySession.delete(sessionId);
    else queuedBySession.set(sessionId, v);
  };
  function track(turnId: string, userId: string, isQueued: boolean, sessionId = '') {
    if (tracked.has(turnId)) return;
    tracked.set(turnId, { userId, sessionId, queued: isQueued });
    bump(userId, 1);
    if (isQueued) countQueued(sessionId, 1);
  }
  function started(turnId: string, userId: string, sessionId: string) {
    const t = tracked.get(turnId);
    if (!t) return track(turnId, userId, false, sessionId);
    if (t.queued) {
      t.queued = false;
      countQueued(t.sessionId, -1);
    }
  }
  function untrack(turnId: string) {
    const t = tracked.get(turnId);
    if (!t) return;
    tracked.delete(turnId);
    if (t.queued) countQueued(t.sessionId, -1);
    bump(t.userId, -1);
  }
  /** Submissions in progress, by session; and the row being written of a turn whose prompt went first. */
  const submitting = new Map<string, number>();
  const rowPending = new Map<string, Promise<unknown>>();
  /** Sessions whose prompt-first row was refused once: their turns are written first from then on. */
  const writeFirst = new Set<string>();

  /** Reads a turn and answers its waiters if it has ended. */
  async function recheck(turnId: string) {
    const row = await turns.get(turnId);
    if (row && ['succeeded', 'failed', 'interrupted', 'cancelled'].includes(row.status)) settle(row);
  }

  function settle(row: TurnRow) {
    const ws = waiters.get(row.turn_id);
    waiters.delete(row.turn_id);
    for (const w of ws ?? []) w(row);
  }

  /** The turn's end, told to waiters here and on the other replicas. */
  function ended(row: TurnRow) {
    settle(row);
    d.cluster.publish({ k: 'finished', s: row.session_id, t: row.turn_id });
  }

  async function announceEnd(row: TurnRow) {
    const t = presentTurn(row);
    if (row.error_code && row.status !== 'cancelled') await events.append(row.session_id, row.turn_id, 'error', t.error);
    await events.append(row.session_id, row.turn_id, 'turn', t);
    await events.append(row.session_id, row.turn_id, 'done', t);
  }

  /** Runs a claimed turn; whatever breaks, the turn is recorded as failed and its waiters answered. */
  async function runClaimed(turn: TurnRow, startedAt: number, slot: Slot, fresh?: SessionRow, waitingFor?: string, written?: Promise<TurnRow | null>) {
    try {
      await runClaimedUnsafe(turn, startedAt, slot, fresh, waitingFor, written);
    } catch (err) {
      if (written && !(await written.catch(() => null))) {
        // Never recorded: nothing to fail.
        current.delete(turn.session_id);
        waitingApproval.delete(turn.session_id);
        return;
      }
      log.error({ err, turn_id: turn.turn_id }, 'turn bookkeeping failed; recording the turn as failed');
      current.delete(turn.session_id);
      waitingApproval.delete(turn.session_id);
      const at = monotonicNow();
      const failed: TurnRow = { ...turn, status: 'failed', started_at: startedAt, finished_at: at, duration_ms: at - startedAt, error_code: 'INTERNAL', error_message: 'the server could not record this turn' };
      try {
        if (await turns.finish(turn.turn_id, d.runnerId, { status: 'failed', finished_at: at, duration_ms: failed.duration_ms, error_code: 'INTERNAL', error_message: failed.error_message })) await announceEnd(failed);
      } catch (err2) {
        log.error({ err: err2, turn_id: turn.turn_id }, 'could not record a failed turn');
      }
      ended((await turns.get(turn.turn_id).catch(() => undefined)) ?? failed);
    }
  }

  async function runClaimedUnsafe(turn: TurnRow, startedAt: number, slot: Slot, fresh?: SessionRow, waitingFor?: string, written?: Promise<TurnRow | null>) {
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
      userId: session.user_id,
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
        // Not awaited: the log keeps the session's events in order, and the CLI's output keeps flowing.
        const e = events.append(turn.session_id, turn.turn_id, 'message', m);
        if (e instanceof Promise) e.catch((err: unknown) => log.error({ err, turn_id: turn.turn_id }, 'could not log an event'));
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
    } else if (resume && !written && !(await d.transcriptExists(session))) {
      // (A turn whose prompt goes first was checked at submission, in this same run of the event loop.)
      outcome = { status: 'failed', result: null, error: { code: 'TRANSCRIPT_MISSING', message: 'the transcript vanished before this turn ran' }, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs: 0 };
      await sessions.update(session.session_id, patch);
    } else {
      if (resume && d.prepareResume && !runner.liveSessions().includes(session.session_id)) await d.prepareResume(session);
      // The prompt goes to the CLI first; the bookkeeping is written while it works.
      const run = runner.runTurn(spec);
      // A refusal before the process starts (its folder, shutdown) is read below, after the bookkeeping.
      run.catch(() => {});
      try {
        await afterPendingWork();
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
      if (!(await d.cluster.acquire(session.session_id))) {
        // Another replica took the session over while a person decided: it resumes the call.
        log.warn({ turn_id: turn.turn_id, session_id: session.session_id }, 'lease lost while a tool call waited for approval; leaving the turn to the replica holding it');
        current.delete(session.session_id);
        interruptedWhileWaiting.delete(turn.turn_id);
        stopBeforeStart.delete(turn.turn_id);
        untrack(turn.turn_id);
        slot.release();
        const now = await turns.get(turn.turn_id);
        if (now && ['succeeded', 'failed', 'interrupted', 'cancelled'].includes(now.status)) settle(now);
        return;
      }
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
    // The turn no longer counts against the bounds once its outcome is known, before it is
    // visible as ended: a client that saw it end may start the next one at once.
    untrack(turn.turn_id);
    slot.release();
    if (written && !(await written.catch(() => null))) {
      // Its row could not be written (the submission failed, the CLI was stopped): nothing to
      // record, but whoever follows the session's events sees the turn end.
      current.delete(session.session_id);
      waitingApproval.delete(session.session_id);
      await announceEnd({ ...done, status: 'failed', error_code: 'INTERNAL', error_message: 'the turn could not be recorded and was stopped' });
      return;
    }
    const recorded = await turns.finish(turn.turn_id, d.runnerId, {
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
    if (!recorded) {
      // Another replica took the session over (this one lost its lease): its record stands, and
      // this process's view of the conversation is stale.
      log.warn({ turn_id: turn.turn_id, session_id: session.session_id }, 'turn ended after another replica took its session over');
      runner.release(session.session_id);
      ended((await turns.get(turn.turn_id)) ?? done);
      return;
    }
    const startedNow = !session.started && (await d.transcriptExists(session));
    await sessions.addTurn(session.session_id, { at: finished, costUsd: outcome.costUsd, inputTokens: outcome.inputTokens, outputTokens: outcome.outputTokens, started: startedNow });
    if (startedNow) await d.onStarted?.(session);
    metrics.turnFinished(done.status, (done.duration_ms ?? 0) / 1000);
    await announceEnd(done);
    ended(done);
  }

  async function loop(sessionId: string, actor: Actor, first?: Claimed) {
    if (first) {
      const slot = holdSlot(first.turn.user_id, first.release);
      try {
        await runClaimed(first.turn, Number(first.turn.started_at), slot, first.session, first.waitingFor, first.written);
      } finally {
        untrack(first.turn.turn_id);
        slot.release();
      }
    }
    for (;;) {
      actor.again = false;
      if (draining) return;
      // With one process every queued turn is counted here, and one queued after this look kicks
      // the actor again: none counted, none to read (the common case after a turn, spared a query
      // while its answer goes out).
      const next = !d.cluster.shared && !queuedBySession.has(sessionId) ? undefined : await turns.nextQueued(sessionId);
      if (!next) {
        if (actor.again) continue;
        return;
      }
      if (!(await d.cluster.acquire(sessionId))) {
        // Another replica runs this session: it takes its queued turns, and what this one kept
        // warm for it is out of date.
        runner.discardWarm(sessionId);
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
        started(next.turn_id, next.user_id, next.session_id);
        try {
          await runClaimed(next, startedAt, slot);
        } finally {
          untrack(next.turn_id);
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

  function drain() {
    draining = true;
    // Sessions with nothing running here may be taken up by another replica at once.
    const busyHere = new Set([...actors.keys(), ...waitingApproval.keys()]);
    d.cluster.releaseExcept(busyHere).catch((err: unknown) => log.warn({ err }, 'could not give back leases'));
  }

  async function takeUpWaiting(waiting: Array<{ turnId: string; toolUseId: string }>) {
    for (const w of waiting) {
      const turn = await turns.get(w.turnId);
      if (!turn || turn.status !== 'running' || actors.has(turn.session_id)) continue;
      const session = await sessions.get(turn.session_id);
      if (!session || !(await d.cluster.acquire(turn.session_id))) continue;
      // Taken up here: this replica records its end (unless another one took it up meanwhile).
      if (turn.runner_id !== d.runnerId && !(await turns.reassign(turn.turn_id, turn.runner_id, d.runnerId))) continue;
      track(turn.turn_id, turn.user_id, false, turn.session_id);
      kick(turn.session_id, { turn: { ...turn, runner_id: d.runnerId }, session, release: null, waitingFor: w.toolUseId });
    }
  }

  async function submit(session: SessionRow, input: SubmitInput): Promise<TurnRow> {
      if (draining) throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
      // The waiting line bounds turns that wait: one that can start now is let through, even when
      // the line is full (or MAX_QUEUED_TURNS=0); a full line is checked below, before a turn is written to wait.
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
      // One process (no other replica): an idle session, nothing queued or being submitted for it,
      // and a free slot. This process is then the only one that can write a turn of the session,
      // so the prompt goes to the CLI first and the row is written while the CLI works.
      if (
        !d.cluster.shared &&
        !writeFirst.has(session.session_id) &&
        !actors.has(session.session_id) &&
        !queuedBySession.has(session.session_id) &&
        submitting.get(session.session_id) === 1
      ) {
        const release = admission.tryAcquire(session.user_id);
        if (release) {
          const row: TurnRow = { ...base, seq: 0, status: 'running', started_at: now, runner_id: d.runnerId };
          let settleWritten: (r: TurnRow | null) => void = () => {};
          const written = new Promise<TurnRow | null>((r) => (settleWritten = r));
          rowPending.set(session.session_id, written);
          track(row.turn_id, session.user_id, false, session.session_id);
          metrics.turnQueued();
          kick(session.session_id, { turn: row, session, release, written });
          let inserted: TurnRow | null = null;
          let failure: unknown = null;
          try {
            // The SDK writes the prompt to the CLI a few promise steps after it is pushed: let it.
            await afterPendingWork();
            inserted = await turns.insert({ ...base, status: 'running', started_at: now, runner_id: d.runnerId });
          } catch (err) {
            failure = err;
          } finally {
            settleWritten(inserted);
            rowPending.delete(session.session_id);
          }
          if (!inserted) {
            // The prompt already went to the CLI: stop it, and write this session's turns first from now on.
            writeFirst.add(session.session_id);
            await interruptTurn(session.session_id, row.turn_id, 'the turn could not be recorded', d.runnerId);
            if (failure) throw failure;
            // A running row no actor of this process runs (left by a failed bookkeeping).
            log.error({ session_id: session.session_id }, 'a running turn of this session exists that no actor of this process runs');
            throw busy(session.session_id);
          }
          return inserted;
        }
      }
      // Only the replica holding the session's lease runs it; any other queues the turn for it.
      const mine = await d.cluster.acquire(session.session_id);
      // A turn whose prompt went first is having its row written: turns after it wait for that.
      for (let p = rowPending.get(session.session_id); p; p = rowPending.get(session.session_id)) await p;
      // Fast path: an idle session and a free slot. The turn is written as running (the database
      // refuses it if another one runs) and its prompt reaches the CLI without more round trips.
      if (mine && !actors.has(session.session_id)) {
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
            track(claimed.turn_id, session.user_id, false, session.session_id);
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
      // An idle session whose actor is still winding down after its last turn (its answer went
      // out first) takes this turn at once, with a slot free for it: that is not waiting in line.
      const windingDown = actors.has(session.session_id) && !current.has(session.session_id) && !queuedBySession.has(session.session_id) && admission.canStart(session.user_id);
      // Counted from here until queue() tracks it, so concurrent submissions cannot overfill the line.
      if (!windingDown && queued + enqueuing >= d.maxQueued) {
        throw new AppError('CAPACITY_EXCEEDED', `${queued} turns are already waiting; try again shortly`, { retryAfter: 5 });
      }
      enqueuing++;
      let row: TurnRow | null;
      try {
        row = await turns.insert(base);
      } finally {
        enqueuing--;
      }
      if (!row) throw new Error('a queued turn could not be written');
      return queue(row);

      async function queue(row: TurnRow): Promise<TurnRow> {
      // Counted here until it ends, wherever it runs (the holder's `finished` notice, or the sweep);
      // counted before anything is awaited, so an actor that runs it meanwhile finds it counted.
      track(row.turn_id, session.user_id, true, session.session_id);
      const earlier = await turns.unfinishedBefore(session.session_id, row.seq);
      // Refused only if it is still queued: had the earlier turn just ended, it may be running now.
      if (earlier.length > 0 && input.ifBusy === 'reject' && (await turns.removeQueued(row.turn_id))) {
        untrack(row.turn_id);
        throw busy(session.session_id);
      }
      metrics.turnQueued();
      await sessions.update(session.session_id, { last_active: now });
      await events.append(session.session_id, row.turn_id, 'turn', presentTurn(row));
      const runningTurn = earlier.find((t) => t.status === 'running');
      if (input.ifBusy === 'interrupt' && runningTurn) await interruptTurn(session.session_id, runningTurn.turn_id, 'interrupted by a newer turn (if_busy: interrupt)', runningTurn.runner_id);
      if (mine) kick(session.session_id);
      else d.cluster.publish({ k: 'queued', s: session.session_id });
      return row;
      }
  }

  return {
    async submit(session, input) {
      submitting.set(session.session_id, (submitting.get(session.session_id) ?? 0) + 1);
      try {
        return await submit(session, input);
      } finally {
        const n = (submitting.get(session.session_id) ?? 1) - 1;
        if (n <= 0) submitting.delete(session.session_id);
        else submitting.set(session.session_id, n);
      }
    },

    waitFor(turnId) {
      return new Promise<TurnRow>((resolve, reject) => {
        let poll: NodeJS.Timeout | undefined;
        const list = waiters.get(turnId) ?? [];
        list.push((row) => {
          clearInterval(poll);
          resolve(row);
        });
        waiters.set(turnId, list);
        // It may have finished before we started waiting.
        recheck(turnId).catch((err: unknown) => {
          clearInterval(poll);
          reject(err);
        });
        // Run by another replica: its end is notified; a look now and then covers a lost notice.
        if (d.cluster.shared) {
          poll = setInterval(() => void recheck(turnId).catch(() => {}), 1_000);
          poll.unref();
        }
      });
    },

    async interrupt(sessionId) {
      // A turn whose prompt went first: its row is on its way.
      await rowPending.get(sessionId)?.catch(() => {});
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
      const at = monotonicNow();
      if (!(await turns.cancelQueued(turn.turn_id, at))) {
        const now = await turns.get(turn.turn_id);
        throw new AppError('TURN_NOT_CANCELLABLE', `turn ${turn.turn_id} is ${now?.status ?? 'gone'} and can no longer be cancelled`);
      }
      untrack(turn.turn_id);
      const row = (await turns.get(turn.turn_id))!;
      metrics.turnFinished('cancelled', 0);
      await announceEnd(row);
      ended(row);
      return row;
    },

    newSessionId() {
      return runner.reserveSpare() ?? randomUUID();
    },

    release(sessionId) {
      runner.release(sessionId);
      // A turn still running or waiting here keeps the lease; the heartbeat gives it back later.
      if (actors.has(sessionId) || current.has(sessionId) || waitingApproval.has(sessionId)) return;
      d.cluster.release(sessionId).catch((err: unknown) => log.warn({ err, session_id: sessionId }, 'could not release a lease'));
    },

    async resumeQueued() {
      for (const sessionId of await turns.sessionsWithQueued()) {
        // Another live replica's session: that one runs (and counts) its queued turns.
        if (!(await d.cluster.acquire(sessionId))) continue;
        const rows = await turns.listBySession(sessionId, { status: 'queued', limit: 10_000 });
        for (const r of rows) track(r.turn_id, r.user_id, true, r.session_id);
        kick(sessionId);
      }
    },

    resumeWaiting: takeUpWaiting,

    currentTurn(sessionId) {
      return current.get(sessionId);
    },

    onClusterMessage(m) {
      if (m.k === 'queued' && d.cluster.holds(m.s) && !draining) kick(m.s);
      else if (m.k === 'finished') {
        // Queued here, run elsewhere: it no longer counts against this replica's bounds.
        untrack(m.t);
        if (waiters.has(m.t)) void recheck(m.t).catch(() => {});
      }
      else if (m.k === 'interrupt' && (current.get(m.s) === m.t || waitingApproval.get(m.s) === m.t)) {
        void interruptTurn(m.s, m.t, 'interrupted by a client (through another replica)').catch((err: unknown) => log.error({ err, turn_id: m.t }, 'could not interrupt a turn'));
      }
    },

    activeSessions() {
      return new Set([...actors.keys(), ...waitingApproval.keys(), ...runner.liveSessions()]);
    },

    leasesLost(ids) {
      for (const id of ids) {
        runner.release(id);
        // A turn still running here is another replica's business now: stop it.
        const t = current.get(id);
        if (t) void runner.interrupt(id, { code: 'REPLICA_LOST', message: 'another replica took this session over' });
      }
    },

    busy(sessionId) {
      return actors.has(sessionId) || current.has(sessionId) || waitingApproval.has(sessionId) || rowPending.has(sessionId);
    },

    leaseTaken(sessionId) {
      if (!actors.has(sessionId)) runner.discardWarm(sessionId);
    },

    resync() {
      for (const id of waiters.keys()) void recheck(id).catch(() => {});
      void d.approvals.recheckAll().catch(() => {});
    },

    async sweep() {
      if (draining) return;
      // What waits here for another replica's notice looks again (a notice may have been lost).
      await d.approvals.recheckAll();
      const counted = [...tracked.keys()];
      if (counted.length > 0) {
        const ended = await turns.endedAmong(counted);
        for (const id of ended) untrack(id);
        for (const id of ended) if (waiters.has(id)) void recheck(id).catch(() => {});
      }
      for (const t of await d.cluster.abandonedRunning(50)) {
        if (actors.has(t.session_id) || !(await d.cluster.acquire(t.session_id))) continue;
        const pending = (await d.approvals.adopt(t.session_id)).filter((p) => p.turn_id === t.turn_id);
        if (pending.length > 0) {
          // Waiting for a person: the transcript holds the deferred call, so the turn goes on here.
          log.warn({ turn_id: t.turn_id, from: t.runner_id }, 'taking up a turn that waits for approval from a replica that is gone');
          await takeUpWaiting([{ turnId: t.turn_id, toolUseId: pending[0]!.tool_use_id }]);
          continue;
        }
        const at = monotonicNow();
        const failed = await turns.takeOver(t.turn_id, t.runner_id, d.runnerId, {
          status: 'failed',
          finished_at: at,
          duration_ms: t.started_at === null ? null : at - Number(t.started_at),
          error_code: 'REPLICA_LOST',
          error_message: 'the replica running this turn stopped answering; its lease expired and another replica took the session over',
        });
        if (!failed) continue;
        log.warn({ turn_id: t.turn_id, session_id: t.session_id, from: t.runner_id }, 'failed a turn of a replica that is gone');
        metrics.turnFinished('failed', 0);
        await announceEnd(failed);
        ended(failed);
        kick(t.session_id);
      }
      for (const id of await d.cluster.queuedUnowned(100)) if (!actors.has(id)) kick(id);
    },

    drain,

    async stop(graceMs) {
      if (!draining) drain();
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
