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
import type { Cluster } from '../cluster/cluster.js';
import type { FastifyBaseLogger } from 'fastify';

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

/**
 * Purges between replicas. A replica told of a purge removes what it holds of the session (after
 * `release`: its process and TMPDIR) and says so (`unheld`), failed or not; the purging replica waits
 * (at most `waitMs`) for the one holding the session's lease, so that it answers only once that
 * replica's process, warm or ending, has had its last writes removed too.
 */
export function createPurgeAcks(d: {
  cluster: Pick<Cluster, 'publish' | 'onMessage' | 'replicaId'>;
  purgeHere: PurgeHere;
  release: (sessionId: string) => void;
  log: FastifyBaseLogger;
  waitMs: number;
}): { whenUnheld(sessionId: string, replicaId: string): Promise<void> } {
  const waiting = new Map<string, Array<() => void>>();
  d.cluster.onMessage((m) => {
    if (m.k === 'unheld') {
      for (const resolve of waiting.get(`${m.s} ${m.r}`) ?? []) resolve();
      return;
    }
    if (m.k !== 'purged') return;
    d.release(m.s);
    d.purgeHere(m.s, m.cwd)
      .catch((err: unknown) => d.log.warn({ err }, 'could not remove a purged session here'))
      .finally(() => d.cluster.publish({ k: 'unheld', s: m.s, r: d.cluster.replicaId }));
  });
  return {
    whenUnheld(sessionId, replicaId) {
      const key = `${sessionId} ${replicaId}`;
      let timer: NodeJS.Timeout | undefined;
      let resolve!: () => void;
      const done = new Promise<void>((r) => {
        resolve = r;
        waiting.set(key, [...(waiting.get(key) ?? []), r]);
        timer = setTimeout(r, d.waitMs);
        timer.unref();
      });
      return done.finally(() => {
        clearTimeout(timer);
        const rest = (waiting.get(key) ?? []).filter((x) => x !== resolve);
        if (rest.length > 0) waiting.set(key, rest);
        else waiting.delete(key);
      });
    },
  };
}
