/**
 * @module sessions/service
 * Session metadata: create, list, read, rename/tag/archive, delete, fork, transcript and
 * import. Rows in the database are the index; the transcript itself stays where the CLI
 * keeps it and is read and changed only through the SDK's own session functions.
 * One service for the one resource (just over 400 lines): what can stand alone already does
 * (fork points: fork-point.ts, import candidates: import.ts, purge: purge.ts).
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { AppError } from '../errors.js';
import { monotonicNow } from '../clock.js';
import type { Config } from '../config.js';
import type { ClaudeSessions, SessionMessage } from '../claude/sessions.js';
import { transcriptPath } from '../claude/paths.js';
import { assertPermissionModeUsable, type PermissionMode } from '../claude/permission-mode.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';
import { isUniqueViolation } from '../storage/db.js';
import { decodeCursor, encodeCursor } from '../storage/cursor.js';
import type { TurnRepository, TurnRow } from '../storage/turns-repo.js';
import type { Workspaces } from '../workspace/workspace.js';
import type { TurnService } from '../turns/service.js';
import type { TurnEngine } from '../turns/engine/index.js';
import { ownedSession, type Caller } from '../auth/access.js';
import type { Cluster } from '../cluster/cluster.js';
import { createPurgeAcks, type PurgeHere } from './purge.js';
import { lastFinishedMessage, messageBeforeTurn } from './fork-point.js';
import { importCandidates } from './import.js';
import type { AgentService } from '../agents/service.js';
import type { WebhookService } from '../webhooks/service.js';
import { preparePrompt } from '../turns/prompt.js';
import { applyOptions, checkOverrides, viewOptions } from '../agents/options.js';
import { claimable, type AgentOptions } from '../claude/agent-options.js';
import { AGENT_OPTION_KEYS, type AgentOptionsInput } from '../schemas.js';
import type { CreateSessionBody, ForkBody, ImportBody, ListSessionsQuery, PatchSessionBody, Session } from './schemas.js';

export interface SessionService {
  /** `firstTurn`: what the first turn (with `prompt`) has of its own. */
  create(
    caller: Caller,
    body: CreateSessionBody,
    firstTurn?: { outputSchema?: Record<string, unknown> | undefined },
  ): Promise<{ session: Session; turn: TurnRow | null }>;
  list(caller: Caller, q: ListSessionsQuery): Promise<{ sessions: Session[]; next_cursor: string | null }>;
  get(caller: Caller, sessionId: string): Promise<Session>;
  patch(caller: Caller, sessionId: string, body: PatchSessionBody): Promise<Session>;
  remove(caller: Caller, sessionId: string, purge: boolean): Promise<Session>;
  fork(caller: Caller, sessionId: string, body: ForkBody): Promise<Session>;
  /**
   * A new session whose conversation ends just before turn `turnId` (rewind's `fork`): same folder,
   * settings and agent; an empty conversation when that turn opened it.
   */
  forkBefore(caller: Caller, sessionId: string, turnId: string): Promise<Session>;
  /** forkBefore in two steps: everything checked and the fork point found first; the returned call makes the fork. */
  prepareForkBefore(caller: Caller, sessionId: string, turnId: string): Promise<() => Promise<Session>>;
  messages(
    caller: Caller,
    sessionId: string,
    page: { limit: number; offset: number; order: 'asc' | 'desc' },
  ): Promise<{ messages: SessionMessage[]; offset: number; limit: number; next_offset: number | null; order: 'asc' | 'desc' }>;
  importFromWorkspace(caller: Caller, body: ImportBody): Promise<{ imported: number; already_known: number; sessions: Session[] }>;
}

export interface SessionServiceDeps {
  /** Told when a session is made (created, forked, imported) or deleted. */
  webhooks?: Pick<WebhookService, 'emit'>;
  config: Pick<
    Config,
    'claudeConfigDir' | 'sandboxOptIn' | 'maxPromptChars' | 'allowedPermissionModes' | 'interruptGraceMs' | 'maxAttachmentBytes' | 'maxAttachments'
  >;
  sessions: SessionRepository;
  turns: TurnRepository;
  turnService: TurnService;
  /** The agents sessions start from, and the checks of a session's own options. */
  agents: Pick<AgentService, 'choose' | 'check'>;
  engine: Pick<TurnEngine, 'newSessionId' | 'release' | 'cancel' | 'interrupt' | 'waitFor'>;
  claude: ClaudeSessions;
  workspace: Workspaces;
  log: FastifyBaseLogger;
  /**
   * Removes what this replica holds of the session (events, rows, transcripts, checkpoints), once
   * its process here has ended and the turn that was running has its done event.
   */
  purgeHere: PurgeHere;
  /** After a purge the other replicas remove their own copies, and this one does when told of theirs. */
  cluster: Pick<Cluster, 'publish' | 'onMessage' | 'replicaId' | 'shared' | 'holder'>;
}

const iso = (ms: number) => new Date(Number(ms)).toISOString();

/** The activity columns of a session that has not run a turn yet, as of `now`. */
const noActivity = (now: number) => ({ created_at: now, last_active: now, turn_count: 0, total_cost_usd: 0, input_tokens: 0, output_tokens: 0 });

export function createSessionService(deps: SessionServiceDeps): SessionService {
  const { config, sessions, turns, turnService, engine, claude, workspace, log } = deps;
  // Purged on another replica: this one's warm process and TMPDIR of the session go (release), then what it holds.
  // Purged elsewhere: this replica's process and TMPDIR of the session go, then what it holds (and it says so).
  const acks = createPurgeAcks({
    cluster: deps.cluster,
    purgeHere: deps.purgeHere,
    release: (id) => engine.release(id),
    log,
    waitMs: config.interruptGraceMs + 10_000,
  });

  const pathOf = (row: SessionRow) => transcriptPath(config.claudeConfigDir, row.cwd, row.session_id);

  /** The owner's webhooks (and every user's) are told; never throws. */
  const tell = (type: 'session.created' | 'session.deleted', session: Session) => void deps.webhooks?.emit(type, session.user_id, session, session.session_id);

  async function present(row: SessionRow, running?: string | null): Promise<Session> {
    const p = pathOf(row);
    const st = await fs.promises.stat(p).catch(() => null);
    const runningTurn = running !== undefined ? running : ((await turns.runningBySession([row.session_id])).get(row.session_id) ?? null);
    return {
      session_id: row.session_id,
      user_id: row.user_id,
      session_name: row.session_name,
      status: row.status,
      project: row.project,
      cwd: row.cwd,
      created_at: iso(row.created_at),
      last_active: iso(row.last_active),
      turn_count: Number(row.turn_count),
      running_turn_id: runningTurn,
      total_cost_usd: Number(row.total_cost_usd),
      usage: { input_tokens: Number(row.input_tokens), output_tokens: Number(row.output_tokens) },
      transcript: { path: p, exists: st !== null, bytes: st?.size ?? 0 },
      first_prompt: row.first_prompt,
      tag: row.tag,
      permission_mode: row.permission_mode as PermissionMode,
      model: row.model,
      agent: row.agent_id ? { agent_id: row.agent_id, version: Number(row.agent_version) } : null,
      options: viewOptions(row.options ? (JSON.parse(row.options) as AgentOptions) : null),
    };
  }

  /** Whether the session's transcript exists, on this disk or in the transcript store. */
  async function hasTranscript(row: SessionRow): Promise<boolean> {
    return claude.exists(row.session_id, row.cwd);
  }

  /** Waits (bounded) for a turn to end; a turn that does not end in time makes the purge a 409. */
  async function settle(turnId: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      engine.waitFor(turnId).then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), config.interruptGraceMs + 10_000))),
    ]).finally(() => clearTimeout(timer));
    if (!ended) throw new AppError('SESSION_BUSY', `turn ${turnId} of this session is still ending; purge it again in a moment`);
  }

  /** The transcript must be there for operations that read or copy it. */
  async function requireTranscript(row: SessionRow): Promise<string> {
    const p = pathOf(row);
    if (!(await hasTranscript(row))) {
      const why = row.started ? 'is missing' : 'does not exist yet: the session has had no turn';
      throw new AppError('TRANSCRIPT_MISSING', `the transcript of session ${row.session_id} ${why}; it is expected at ${p}`, { details: { path: p } });
    }
    return p;
  }

  function ownerFor(caller: Caller, requested: string | undefined): string {
    if (requested === undefined || requested === caller.userId) return caller.userId;
    if (!caller.admin) throw new AppError('INVALID_REQUEST', 'user_id may only be given by an admin');
    return requested;
  }

  return {
    async create(caller, body, firstTurn) {
      const userId = ownerFor(caller, body.user_id);
      if (body.agent_version !== undefined && body.agent_id === undefined) {
        throw new AppError('INVALID_REQUEST', 'agent_version needs agent_id', { details: { field: 'body.agent_version' } });
      }
      const agent = body.agent_id ? await deps.agents.choose(caller, userId, body.agent_id, body.agent_version) : null;
      // The session's own options over its agent's: env and MCP servers add to the agent's by name.
      const own = Object.fromEntries(Object.entries(body).filter(([k]) => (AGENT_OPTION_KEYS as string[]).includes(k))) as AgentOptionsInput;
      await deps.agents.check(own, 'body');
      if (agent && !agent.mayChange) checkOverrides(agent.options, own);
      const options = applyOptions(agent?.options ?? null, own, { mergeMaps: true });
      // A shared agent's disallowed tools stay disallowed: a session adds to them.
      if (agent && !agent.mayChange && agent.options.disallowed_tools && own.disallowed_tools) {
        options.disallowed_tools = [...new Set([...agent.options.disallowed_tools, ...own.disallowed_tools])];
      }
      const mode: PermissionMode = body.permission_mode ?? agent?.permissionMode ?? 'default';
      assertPermissionModeUsable(mode, { sandboxOptIn: config.sandboxOptIn, allowed: config.allowedPermissionModes });
      // A prompt that will be refused is refused before anything is written.
      if (body.prompt !== undefined) preparePrompt(body.prompt, config);
      // In the owner's own folder: no two users' sessions share a working directory.
      const { project, cwd } = workspace.forUser(userId).resolve(body.project);
      const now = monotonicNow();
      const row: SessionRow = {
        // The SDK's UUID, chosen up front (bound to a prewarmed spare process when one is ready).
        session_id: engine.newSessionId(claimable(options, undefined)),
        user_id: userId,
        session_name: body.session_name ?? null,
        status: 'active',
        project,
        cwd,
        ...noActivity(now),
        first_prompt: null,
        tag: null,
        permission_mode: mode,
        model: body.model ?? agent?.model ?? null,
        system_prompt: null,
        agent_id: agent?.agentId ?? null,
        agent_version: agent?.version ?? null,
        options: Object.keys(options).length > 0 ? JSON.stringify(options) : null,
        started: 0,
      };
      await sessions.insert(row);
      let turn: TurnRow | null = null;
      if (body.prompt !== undefined) {
        try {
          turn = await turnService.startOn(row, { prompt: body.prompt, outputSchema: firstTurn?.outputSchema });
        } catch (err) {
          // A refused first turn (capacity, shutdown) leaves no session behind.
          await sessions.remove(row.session_id);
          engine.release(row.session_id);
          throw err;
        }
      }
      const fresh = (await sessions.get(row.session_id))!;
      const session = await present(fresh);
      tell('session.created', session);
      return { session, turn };
    },

    async list(caller, q) {
      const c = q.cursor ? decodeCursor(q.cursor) : undefined;
      const after = c && { lastActive: c.at, sessionId: c.id };
      const rows = await sessions.list({
        userId: ownerFor(caller, q.user_id),
        status: q.status,
        project: q.project === undefined ? undefined : workspace.normalize(q.project),
        q: q.q,
        limit: q.limit + 1,
        after,
      });
      const page = rows.slice(0, q.limit);
      const running = await turns.runningBySession(page.map((r) => r.session_id));
      return {
        sessions: await Promise.all(page.map((r) => present(r, running.get(r.session_id) ?? null))),
        next_cursor: rows.length > q.limit ? encodeCursor(page.at(-1)!.last_active, page.at(-1)!.session_id) : null,
      };
    },

    async get(caller, sessionId) {
      return present(await ownedSession(sessions, caller, sessionId));
    },

    async patch(caller, sessionId, body) {
      const row = await ownedSession(sessions, caller, sessionId);
      if (row.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${sessionId} is deleted`);
      const onDisk = row.started === 1 && (await hasTranscript(row));
      // The transcript first, so a terminal user sees the same title, tag and archive state.
      if (onDisk) {
        if (body.session_name !== undefined) await claude.rename(sessionId, row.cwd, body.session_name);
        if (body.tag !== undefined) await claude.tag(sessionId, row.cwd, body.tag);
        if (body.status === 'archived' && row.status !== 'archived') await claude.archive(sessionId, row.cwd);
        if (body.status === 'active' && row.status === 'archived') await claude.unarchive(sessionId, row.cwd);
      }
      await sessions.update(sessionId, {
        ...(body.session_name !== undefined ? { session_name: body.session_name } : {}),
        ...(body.tag !== undefined ? { tag: body.tag } : {}),
        ...(body.status !== undefined ? { status: body.status } : {}),
      });
      return present((await sessions.get(sessionId))!);
    },

    async remove(caller, sessionId, purge) {
      const row = await ownedSession(sessions, caller, sessionId);
      await sessions.update(sessionId, { status: 'deleted' });
      // Told as soon as it is deleted (a purge that fails after this does not take the event back).
      if (row.status !== 'deleted') {
        const gone = await present({ ...row, status: 'deleted' });
        // A purged session's words stay out of its notice (the delivery log keeps it for days).
        tell('session.deleted', purge ? { ...gone, first_prompt: null } : gone);
      }
      // A deleted session runs nothing more: its queued turns are cancelled and its running one interrupted.
      for (const q of await turns.listBySession(sessionId, { status: 'queued', limit: 10_000 })) {
        await engine.cancel(q).catch(() => undefined); // started meanwhile: the interrupt below stops it
      }
      const running = await engine.interrupt(sessionId);
      if (purge) {
        // What is purged must not be written again by a turn still ending: wait for its end
        // (an interrupt is bounded by INTERRUPT_GRACE_MS, then the CLI is killed).
        if (running && running.status === 'running') await settle(running.turn_id);
        engine.release(sessionId);
        // Another replica holding the session may still be closing its process (which writes as it ends).
        const holder = deps.cluster.shared ? await deps.cluster.holder(sessionId) : null;
        await deps.purgeHere(sessionId, row.cwd, running?.turn_id);
        const elsewhere = holder && holder !== deps.cluster.replicaId ? acks.whenUnheld(sessionId, holder) : null;
        deps.cluster.publish({ k: 'purged', s: sessionId, cwd: row.cwd });
        await elsewhere;
        log.info({ session_id: sessionId }, 'session purged');
      }
      engine.release(sessionId);
      return present((await sessions.get(sessionId))!);
    },

    async fork(caller, sessionId, body) {
      const row = await ownedSession(sessions, caller, sessionId);
      if (row.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${sessionId} is deleted`);
      await requireTranscript(row);
      const name = body.session_name ?? `${row.session_name ?? row.first_prompt?.slice(0, 80) ?? 'session'} (fork)`;
      // Taken mid-turn, a fork would hold the running turn's prompt without its answer: it is taken
      // from the last finished turn instead (unless the client named the message to fork up to).
      const upTo = body.up_to_message_id ?? (await lastFinishedMessage({ turns, claude }, row));
      let newId: string;
      try {
        newId = await claude.fork(sessionId, row.cwd, { upToMessageId: upTo, title: name });
      } catch (err) {
        if (body.up_to_message_id && /message|uuid|not found/i.test(String((err as Error).message))) {
          throw new AppError('INVALID_MESSAGE_ID', `message ${body.up_to_message_id} is not in session ${sessionId}`, { cause: err });
        }
        throw err;
      }
      const now = monotonicNow();
      const forked: SessionRow = {
        ...row,
        session_id: newId,
        session_name: name,
        status: 'active',
        ...noActivity(now),
        started: 1,
      };
      try {
        await sessions.insert(forked);
      } catch (err) {
        // The new transcript was adopted meanwhile (an import of the same folder): it is not ours to claim.
        if (isUniqueViolation(err)) throw new AppError('SESSION_BUSY', `the fork ${newId} was adopted by an import meanwhile; fork again`, { cause: err });
        throw err;
      }
      log.info({ session_id: sessionId, fork: newId }, 'session forked');
      const session = await present(forked, null);
      tell('session.created', session);
      return session;
    },

    async forkBefore(caller, sessionId, turnId) {
      return (await this.prepareForkBefore(caller, sessionId, turnId))();
    },

    async prepareForkBefore(caller, sessionId, turnId) {
      const row = await ownedSession(sessions, caller, sessionId);
      if (row.status === 'deleted') throw new AppError('SESSION_DELETED', `session ${sessionId} is deleted`);
      const turn = await turns.get(turnId);
      if (!turn || turn.session_id !== sessionId) throw new AppError('TURN_NOT_FOUND', `turn ${turnId} not found in session ${sessionId}`);
      const name = `${row.session_name ?? row.first_prompt?.slice(0, 80) ?? 'session'} (before turn ${turn.seq})`;
      const at = row.started ? await messageBeforeTurn({ turns, claude }, row, turn) : ({ found: true, uuid: null } as const);
      if (!at.found) {
        throw new AppError(
          'TRANSCRIPT_MISSING',
          `turn ${turnId}'s prompt is not in the session's transcript (compacted away, or never written): fork it with up_to_message_id`,
        );
      }
      const upTo = at.uuid;
      if (upTo !== null) return () => this.fork(caller, sessionId, { up_to_message_id: upTo, session_name: name });
      // The turn opened the conversation: the fork is a new session in the same folder, with nothing said yet.
      return async () => {
        const now = monotonicNow();
        const fresh: SessionRow = {
          ...row,
          session_id: randomUUID(),
          session_name: name,
          status: 'active',
          ...noActivity(now),
          first_prompt: null,
          tag: null,
          started: 0,
        };
        await sessions.insert(fresh);
        log.info({ session_id: sessionId, fork: fresh.session_id, before_turn: turnId }, 'session forked before its first turn');
        const session = await present(fresh, null);
        tell('session.created', session);
        return session;
      };
    },

    async messages(caller, sessionId, page) {
      const row = await ownedSession(sessions, caller, sessionId);
      const { offset, limit, order } = page;
      if (!row.started && !(await hasTranscript(row))) return { messages: [], offset, limit, next_offset: null, order };
      await requireTranscript(row);
      if (order === 'desc') {
        // Counted from the newest: the whole conversation is read (the SDK pages from the first message only).
        const all = await claude.allMessages(sessionId, row.cwd);
        const end = Math.max(0, all.length - offset);
        const messages = all.slice(Math.max(0, end - limit), end).reverse();
        return { messages, offset, limit, next_offset: end - limit > 0 ? offset + limit : null, order };
      }
      const got = await claude.messages(sessionId, row.cwd, { limit: limit + 1, offset });
      return { messages: got.slice(0, limit), offset, limit, next_offset: got.length > limit ? offset + limit : null, order };
    },

    async importFromWorkspace(caller, body) {
      const userId = ownerFor(caller, body.user_id);
      // Only the owner's own folder is looked in: another user's folder is not theirs to adopt.
      const own = workspace.forUser(userId);
      // A project folder that does not exist holds nothing to adopt, and is not created for it.
      const scope: string | null | undefined = body.project !== undefined ? own.find(body.project)?.cwd : null;
      if (scope === undefined) return { imported: 0, already_known: 0, sessions: [] };
      const candidates = await importCandidates({ claude, configDir: config.claudeConfigDir, own }, userId, scope);
      const inserted = new Set(await sessions.insertMissing(candidates));
      const adopted = candidates.filter((c) => inserted.has(c.session_id));
      // With a transcript store, what is adopted goes into it: any replica can then resume it.
      for (const c of adopted) await claude.ensureShared(c.session_id, c.cwd);
      // Known ones are counted only when they are the owner's: another user's session is not even a number here.
      const known = await sessions.ownedBy(
        candidates.filter((c) => !inserted.has(c.session_id)).map((c) => c.session_id),
        userId,
      );
      const made = await Promise.all(adopted.map((r) => present(r, null)));
      for (const m of made) tell('session.created', m);
      return { imported: adopted.length, already_known: known.length, sessions: made };
    },
  };
}
