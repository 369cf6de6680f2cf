/**
 * @module turns/service
 * Runs turns. One writer per session: a turn is a row inserted as `running`, and the
 * database refuses a second running row for the same session (unique partial index), so two
 * requests can never run two CLI processes on one session, whichever process they reach.
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import { monotonicNow } from '../clock.js';
import type { Config } from '../config.js';
import type { ClaudeRunner } from '../claude/runner.js';
import type { ClaudeSessions } from '../claude/sessions.js';
import { transcriptPath } from '../claude/paths.js';
import { assertPermissionModeUsable, type PermissionMode } from '../claude/permission-mode.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';
import type { TurnRepository, TurnRow } from '../storage/turns-repo.js';
import type { Workspace } from '../workspace/workspace.js';
import { ownedSession, type Caller } from '../sessions/access.js';

export interface StartTurnInput {
  prompt: string;
  ifBusy?: 'reject' | 'queue' | 'interrupt' | undefined;
  permissionMode?: PermissionMode | undefined;
}

export interface TurnService {
  /** Runs a turn on a session the caller owns and returns its finished row. */
  run(caller: Caller, sessionId: string, input: StartTurnInput): Promise<TurnRow>;
  /** Runs a turn on a session row already loaded and checked. */
  runOn(session: SessionRow, input: StartTurnInput): Promise<TurnRow>;
  list(caller: Caller, sessionId: string, opts: { status?: TurnRow['status'] | undefined; limit: number; cursor?: string | undefined }): Promise<{ turns: TurnRow[]; nextCursor: string | null }>;
  get(caller: Caller, sessionId: string, turnId: string): Promise<TurnRow>;
  /** The running turn of a session, if any. */
  runningTurnId(sessionId: string): Promise<string | null>;
  /** Stops accepting turns (503) ahead of shutdown. */
  drain(): void;
}

export interface TurnServiceDeps {
  config: Pick<Config, 'claudeConfigDir' | 'sandboxOptIn' | 'maxPromptChars'>;
  sessions: SessionRepository;
  turns: TurnRepository;
  runner: ClaudeRunner;
  claude: ClaudeSessions;
  workspace: Workspace;
  log: FastifyBaseLogger;
}

export function createTurnService(deps: TurnServiceDeps): TurnService {
  const { config, sessions, turns, runner, claude, workspace, log } = deps;
  let draining = false;

  async function runOn(session: SessionRow, input: StartTurnInput): Promise<TurnRow> {
    if (draining) throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
    if (session.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${session.session_id} is deleted`);
    if (input.prompt.length > config.maxPromptChars) {
      throw new AppError('INVALID_REQUEST', `prompt is ${input.prompt.length} characters; the limit is ${config.maxPromptChars}`);
    }
    const mode = input.permissionMode ?? (session.permission_mode as PermissionMode);
    assertPermissionModeUsable(mode, { sandboxOptIn: config.sandboxOptIn });
    workspace.assertStillInside(session.cwd);
    const transcript = transcriptPath(config.claudeConfigDir, session.cwd, session.session_id);
    if (session.started && !fs.existsSync(transcript)) {
      throw new AppError('TRANSCRIPT_MISSING', `the transcript of session ${session.session_id} is missing: it was expected at ${transcript}`, {
        details: { path: transcript },
      });
    }

    const now = monotonicNow();
    const inserted = await turns.insert({
      turn_id: randomUUID(),
      session_id: session.session_id,
      user_id: session.user_id,
      status: 'running',
      prompt: input.prompt,
      result: null,
      error_code: null,
      error_message: null,
      created_at: now,
      started_at: now,
      finished_at: null,
      duration_ms: null,
      cost_usd: null,
      input_tokens: null,
      output_tokens: null,
    });
    if (!inserted) throw new AppError('SESSION_BUSY', `session ${session.session_id} is running a turn; retry when it ends`);
    const turn = inserted;
    const patch: Parameters<SessionRepository['update']>[1] = { last_active: now };
    if (session.first_prompt === null) patch.first_prompt = input.prompt.slice(0, 1000);
    if (session.status === 'archived') patch.status = 'active';
    await sessions.update(session.session_id, patch);

    try {
      const outcome = await runner.runTurn({
        sessionId: session.session_id,
        cwd: session.cwd,
        prompt: input.prompt,
        resume: Boolean(session.started),
        permissionMode: mode,
        model: session.model,
        systemPrompt: session.system_prompt,
        title: session.session_name,
      });
      const finished = monotonicNow();
      const done: Partial<TurnRow> = {
        status: outcome.status,
        result: outcome.result,
        error_code: outcome.error?.code ?? null,
        error_message: outcome.error?.message ?? null,
        finished_at: finished,
        duration_ms: finished - now,
        cost_usd: outcome.costUsd,
        input_tokens: outcome.inputTokens,
        output_tokens: outcome.outputTokens,
      };
      await turns.update(turn.turn_id, done);
      const startedNow = !session.started && fs.existsSync(transcript);
      await sessions.addTurn(session.session_id, {
        at: finished,
        costUsd: outcome.costUsd,
        inputTokens: outcome.inputTokens,
        outputTokens: outcome.outputTokens,
        started: startedNow,
      });
      if (startedNow) await applyMetadata(session);
      return { ...turn, ...done };
    } catch (err) {
      const code = err instanceof AppError ? err.code : 'INTERNAL';
      await turns.update(turn.turn_id, { status: 'failed', error_code: code, error_message: (err as Error).message, finished_at: Date.now(), duration_ms: Date.now() - now });
      throw err;
    }
  }

  /** Tag and archive state set before the transcript existed, written to it now. */
  async function applyMetadata(session: SessionRow) {
    try {
      if (session.tag) await claude.tag(session.session_id, session.cwd, session.tag);
    } catch (err) {
      log.warn({ err, session_id: session.session_id }, 'could not write session metadata to the transcript');
    }
  }

  return {
    runOn,
    async run(caller, sessionId, input) {
      return runOn(await ownedSession(sessions, caller, sessionId), input);
    },
    async list(caller, sessionId, opts) {
      await ownedSession(sessions, caller, sessionId);
      const rows = await turns.listBySession(sessionId, { status: opts.status, limit: opts.limit + 1, afterSeq: opts.cursor ? Number(opts.cursor) : undefined });
      const page = rows.slice(0, opts.limit);
      return { turns: page, nextCursor: rows.length > opts.limit ? String(page[page.length - 1]!.seq) : null };
    },
    async get(caller, sessionId, turnId) {
      await ownedSession(sessions, caller, sessionId);
      const t = await turns.get(turnId);
      if (!t || t.session_id !== sessionId) throw new AppError('TURN_NOT_FOUND', `no turn ${turnId} in session ${sessionId}`);
      return t;
    },
    async runningTurnId(sessionId) {
      const rows = await turns.listBySession(sessionId, { status: 'running', limit: 1 });
      return rows[0]?.turn_id ?? null;
    },
    drain() {
      draining = true;
    },
  };
}
