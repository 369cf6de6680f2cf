/**
 * @module recovery
 * Start-up recovery: what a previous run of this server (on this DATA_DIR) left behind. CLI
 * processes of a server killed with SIGKILL are ended before anything runs; turns it left
 * running failed with it (except those waiting for a tool approval, which go on) and their
 * streams are ended; once the server is ready, turns waiting for an approval and queued turns
 * are taken up.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { reapOrphans } from './claude/processes.js';
import type { Dialect } from './storage/db.js';
import type { PermissionRepository } from './storage/permissions-repo.js';
import type { SessionRepository } from './storage/sessions-repo.js';
import type { TurnRepository, TurnRow } from './storage/turns-repo.js';
import type { EventLog } from './events/log.js';
import type { Workspaces } from './workspace/workspace.js';
import type { TurnEngine } from './turns/engine/index.js';
import type { Approvals } from './permissions/service.js';
import { announceEnd } from './turns/engine/outcome.js';

/** Ends the CLI processes a server killed with SIGKILL left running their turns. */
export async function endOrphans(pidDir: string, configDir: string, log: FastifyBaseLogger): Promise<void> {
  const reaped = await reapOrphans(pidDir, configDir);
  if (reaped > 0) log.warn({ processes: reaped }, 'ended CLI processes left running by a previous run');
}

/**
 * This process's id as a runner of turns, written to DATA_DIR, and the previous process's: that
 * one is dead (this one replaced it), so its turns failed. Other replicas' turns in a shared
 * PostgreSQL are theirs.
 */
export function takeOverDataDir(dataDir: string): { runnerId: string; previousRunner: string | null } {
  const runnerId = randomUUID();
  const idFile = path.join(dataDir, 'runner-id');
  const previousRunner = fs.existsSync(idFile) ? fs.readFileSync(idFile, 'utf8').trim() : null;
  fs.writeFileSync(idFile, runnerId);
  return { runnerId, previousRunner };
}

/** Fails the turns the previous process left running, but those waiting for a tool approval. */
export async function failAbandoned(d: {
  turns: TurnRepository;
  permissions: PermissionRepository;
  dialect: Dialect;
  previousRunner: string | null;
  log: FastifyBaseLogger;
}): Promise<TurnRow[]> {
  const waiting = await d.permissions.allPending();
  const abandoned = await d.turns.failRunning(Date.now(), 'SERVER_RESTARTED', 'the server stopped while this turn was running', {
    except: [...new Set(waiting.map((w) => w.turn_id))],
    ...(d.dialect === 'postgres' ? { runners: [d.previousRunner, null] } : {}),
  });
  if (abandoned.length > 0) d.log.warn({ turns: abandoned.length }, 'marked turns left running by a previous run as failed');
  return abandoned;
}

/** Streams of the failed turns end: their error, final state and `done` join the event log. */
export async function endAbandonedStreams(events: EventLog, abandoned: TurnRow[]): Promise<void> {
  for (const t of abandoned) await announceEnd(events, t);
}

/**
 * Sessions keep their absolute folder, and the transcript store keys them by it: every replica
 * (and every restart) must use the same WORKSPACE_ROOT path, or sessions cannot resume here.
 */
export async function checkWorkspaceRoot(sessions: SessionRepository, workspace: Workspaces, log: FastifyBaseLogger): Promise<void> {
  const recent = await sessions.latest();
  if (recent && workspace.projectOf(recent.cwd) === null) {
    log.error(
      { session_id: recent.session_id, cwd: recent.cwd, workspace_root: workspace.root },
      'sessions in the database live outside this WORKSPACE_ROOT: every replica must use the same WORKSPACE_ROOT path as the one sessions were created under',
    );
  }
}

/** Once the server is ready: turns waiting for a tool approval go on waiting here, queued turns run. */
export async function resumeTurns(approvals: Pick<Approvals, 'start'>, engine: Pick<TurnEngine, 'replica'>): Promise<void> {
  const pending = await approvals.start();
  await engine.replica.resumeWaiting(pending.map((p) => ({ turnId: p.turn_id, toolUseId: p.tool_use_id })));
  await engine.replica.resumeQueued();
}
