/**
 * @module sessions/purge
 * What a replica holds of a purged session, removed once its process here has ended (a CLI
 * writes its transcript as it closes) and the turn that was running, wherever it ran, has its
 * done event: events (written or not yet), rows, stored and local transcripts, file checkpoints,
 * webhook messages about it.
 * The replica that purges runs it, and so does every other replica told of the purge (what its
 * own process handed over meanwhile goes too).
 */
import { bounded } from '../clock.js';
import type { ClaudeRunner } from '../claude/runner/index.js';
import type { ClaudeSessions } from '../claude/sessions.js';
import type { Storage } from '../storage/db.js';
import type { SessionRepository } from '../storage/sessions-repo.js';
import type { TranscriptStore } from '../storage/transcript-store.js';
import type { EventLog } from '../events/log.js';
import type { WebhookService } from '../webhooks/service.js';

/** Removes what this replica holds of the session; `endedTurnId` is the turn that was running. */
export type PurgeHere = (sessionId: string, cwd: string, endedTurnId?: string) => Promise<void>;

export function createPurgeHere(d: {
  runner: Pick<ClaudeRunner, 'ended'>;
  events: Pick<EventLog, 'doneSeq' | 'drop'>;
  transcripts: Pick<TranscriptStore, 'purge'> | null;
  sessions: Pick<SessionRepository, 'purge'>;
  /** Webhook messages about the session (their payloads hold its prompts and results). */
  webhooks: Pick<WebhookService, 'forgetSession'>;
  storage: Pick<Storage, 'forgetDeleted'>;
  claude: Pick<ClaudeSessions, 'removeLocal' | 'removeSideFiles'>;
  /** How long a process may take to end (INTERRUPT_GRACE_MS): waited for, plus 10 s. */
  interruptGraceMs: number;
}): PurgeHere {
  return async (id, cwd, endedTurnId) => {
    await bounded(d.runner.ended(id), d.interruptGraceMs + 10_000);
    // A turn ended on another replica writes its last events just after its row: wait for its done, as long
    // as a process may take to end there (5 s was seen too short for a turn interrupted under load).
    const until = Date.now() + d.interruptGraceMs + 10_000;
    while (endedTurnId && Date.now() < until && (await d.events.doneSeq(id, endedTurnId)) === null) await new Promise((r) => setTimeout(r, 50));
    await d.events.drop(id);
    await d.transcripts?.purge(id);
    await d.sessions.purge(id);
    await d.webhooks.forgetSession(id);
    await d.storage.forgetDeleted();
    await d.claude.removeLocal(id, cwd);
    await d.claude.removeSideFiles(id);
  };
}
