/**
 * @module turns/service
 * What the turn routes call: checks a request against the session (owner, state, transcript,
 * permission mode, limits), then hands the turn to the engine. Nothing is written for a
 * request that is refused.
 */
import { AppError } from '../errors.js';
import type { Config } from '../config.js';
import { transcriptPath } from '../claude/paths.js';
import { assertPermissionModeUsable, type PermissionMode } from '../claude/permission-mode.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';
import type { TurnRepository, TurnRow } from '../storage/turns-repo.js';
import type { Workspaces } from '../workspace/workspace.js';
import { ownedSession, type Caller } from '../auth/access.js';
import type { TurnEngine } from './engine/index.js';
import type { StartTurnBody } from './schemas.js';
import { preparePrompt } from './prompt.js';
import { checkOutputSchema } from '../agents/options.js';

/** A turn's body (derived from its schema) with the server's own names. */
export interface StartTurnInput {
  prompt: StartTurnBody['prompt'];
  ifBusy?: StartTurnBody['if_busy'] | undefined;
  permissionMode?: StartTurnBody['permission_mode'] | undefined;
  outputSchema?: StartTurnBody['output_schema'] | undefined;
}

export interface TurnService {
  /** Queues a turn on a session the caller owns; returns its row (queued). */
  start(caller: Caller, sessionId: string, input: StartTurnInput): Promise<TurnRow>;
  /** Queues a turn on a session row already loaded and owned. */
  startOn(session: SessionRow, input: StartTurnInput): Promise<TurnRow>;
  /** Resolves when the turn has finished. */
  wait(turnId: string): Promise<TurnRow>;
  /** A session the caller may act on (404 otherwise). */
  session(caller: Caller, sessionId: string): Promise<SessionRow>;
  list(
    caller: Caller,
    sessionId: string,
    opts: { status?: TurnRow['status'] | undefined; limit: number; cursor?: string | undefined; order?: 'asc' | 'desc' | undefined },
  ): Promise<{ turns: TurnRow[]; nextCursor: string | null }>;
  get(caller: Caller, sessionId: string, turnId: string): Promise<TurnRow>;
  cancel(caller: Caller, sessionId: string, turnId: string): Promise<TurnRow>;
  interrupt(caller: Caller, sessionId: string): Promise<TurnRow>;
  /** The id of the session's running turn, or null. */
  running(sessionId: string): Promise<string | null>;
}

export interface TurnServiceDeps {
  config: Pick<Config, 'claudeConfigDir' | 'sandboxOptIn' | 'maxPromptChars' | 'allowedPermissionModes' | 'maxAttachmentBytes' | 'maxAttachments'>;
  sessions: SessionRepository;
  turns: TurnRepository;
  engine: TurnEngine;
  workspace: Workspaces;
  /** Whether the session may run a turn where it is (its folder, the isolation in force): throws if not. */
  guard: RunGuard;
  /** Whether the session's transcript exists (on this disk, or in the transcript store). */
  transcriptExists(session: SessionRow): Promise<boolean>;
}

/** Checks that a session may run a turn now; throws the AppError that says why not. */
export type RunGuard = (session: { session_id: string; user_id: string; cwd: string }) => Promise<void> | undefined;

/**
 * Where a session may run: in its owner's folder, still the real folder it was (no link swapped in
 * since). A session made before user folders runs only while the server has one user. Checked
 * when a turn is submitted and again by the runner before any CLI process starts for it (queued,
 * deferred and resumed turns included).
 */
export function createRunGuard(o: { workspace: Workspaces; multiUser: () => Promise<boolean>; sandboxMissing: string | null }): RunGuard {
  const { workspace } = o;
  /** The checks that need to know whether the server has several users now (never on a common turn). */
  async function slow(session: Parameters<RunGuard>[0], owned: boolean): Promise<void> {
    if (!owned) {
      if (await o.multiUser()) {
        const own = workspace.forUser(session.user_id).root;
        throw new AppError(
          'SESSION_NOT_ISOLATED',
          `session ${session.session_id} runs in ${session.cwd}, outside its owner's folder ${own}: it was made before users had folders of their own, and on a server with several users it runs no turn until an operator moves it there (README: "Sessions made before user folders")`,
          { details: { cwd: session.cwd, user_folder: own } },
        );
      }
      workspace.assertStillInside(session.cwd);
    }
    // SANDBOX=auto fell back to no sandbox while the server had one user: keys made since do not open a way through.
    if (o.sandboxMissing && (await o.multiUser())) {
      throw new AppError(
        'SANDBOX_UNAVAILABLE',
        `the server now has several users, but the CLI's sandbox cannot run here (${o.sandboxMissing}); restart the server, which then refuses to start without it, or fix the cause`,
      );
    }
  }
  // A session in its owner's folder, with the sandbox in force, is checked without an await (the turn's hot path).
  return (session) => {
    const owned = workspace.ownedBy(session.cwd, session.user_id);
    if (owned) workspace.forUser(session.user_id).assertStillInside(session.cwd);
    return owned && !o.sandboxMissing ? undefined : slow(session, owned);
  };
}

export function createTurnService(deps: TurnServiceDeps): TurnService {
  const { config, sessions, turns, engine } = deps;

  async function startOn(session: SessionRow, input: StartTurnInput): Promise<TurnRow> {
    if (session.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${session.session_id} is deleted`);
    const prompt = preparePrompt(input.prompt, config);
    if (input.outputSchema) checkOutputSchema(input.outputSchema, 'body.output_schema');
    const mode = input.permissionMode ?? (session.permission_mode as PermissionMode);
    assertPermissionModeUsable(mode, { sandboxOptIn: config.sandboxOptIn, allowed: config.allowedPermissionModes });
    const guarded = deps.guard(session);
    if (guarded) await guarded;
    const transcript = transcriptPath(config.claudeConfigDir, session.cwd, session.session_id);
    if (session.started && !(await deps.transcriptExists(session))) {
      throw new AppError('TRANSCRIPT_MISSING', `the transcript of session ${session.session_id} is missing: it was expected at ${transcript}`, {
        details: { path: transcript },
      });
    }
    return engine.submit(session, {
      prompt: prompt.text,
      content: prompt.content,
      attachments: prompt.attachments,
      outputSchema: input.outputSchema ? JSON.stringify(input.outputSchema) : null,
      ifBusy: input.ifBusy ?? 'reject',
      permissionMode: mode,
    });
  }

  async function ownedTurn(caller: Caller, sessionId: string, turnId: string): Promise<TurnRow> {
    await ownedSession(sessions, caller, sessionId);
    const t = await turns.get(turnId);
    if (!t || t.session_id !== sessionId) throw new AppError('TURN_NOT_FOUND', `no turn ${turnId} in session ${sessionId}`);
    return t;
  }

  return {
    startOn,
    async start(caller, sessionId, input) {
      return startOn(await ownedSession(sessions, caller, sessionId), input);
    },
    wait: (turnId) => engine.waitFor(turnId),
    session: (caller, sessionId) => ownedSession(sessions, caller, sessionId),
    async list(caller, sessionId, opts) {
      await ownedSession(sessions, caller, sessionId);
      const rows = await turns.listBySession(sessionId, {
        status: opts.status,
        limit: opts.limit + 1,
        ...(opts.order === 'desc'
          ? { beforeSeq: opts.cursor ? Number(opts.cursor) : undefined, desc: true }
          : { afterSeq: opts.cursor ? Number(opts.cursor) : undefined }),
      });
      const page = rows.slice(0, opts.limit);
      return { turns: page, nextCursor: rows.length > opts.limit ? String(page[page.length - 1]!.seq) : null };
    },
    get: ownedTurn,
    async cancel(caller, sessionId, turnId) {
      return engine.cancel(await ownedTurn(caller, sessionId, turnId));
    },
    async interrupt(caller, sessionId) {
      await ownedSession(sessions, caller, sessionId);
      const t = await engine.interrupt(sessionId);
      if (!t) throw new AppError('NO_RUNNING_TURN', `session ${sessionId} has no running turn`);
      return t;
    },
    async running(sessionId) {
      return (await turns.runningBySession([sessionId])).get(sessionId) ?? null;
    },
  };
}
