/**
 * @module events/upkeep
 * Keeps the event log near the size of what it tells. A turn streams its answer token by token
 * (thousands of small `stream_event` messages for a long answer, ~50x the answer's bytes); once the
 * turn has ended and a client could no longer be catching up on it (PARTIAL_EVENTS_KEEP_MS), those
 * partials go and the whole messages stay. Events older than EVENT_RETENTION_DAYS go too, when set.
 * Deletes are made in small batches with a pause between them, so requests are never held up for
 * long (SQLite writes one at a time); every replica may run it (deletes are idempotent).
 */
import type { FastifyBaseLogger } from 'fastify';
import type { EventRepository } from '../storage/events-repo.js';
import { loadText } from '../storage/text.js';
import { foldedResult } from './stored.js';

const BATCH = 2_000;

export interface LogUpkeep {
  /** One whole pass now (tests, benchmarks), even after stop(); resolves with the numbers of events removed. */
  run(): Promise<{ partials: number; folded: number; expired: number }>;
  /** Stops the sweep; resolves once a pass in flight has ended. */
  stop(): Promise<void>;
}

export function startLogUpkeep(o: { repo: EventRepository; partialsKeepMs: number; retentionDays: number; log: FastifyBaseLogger }): LogUpkeep {
  const pause = () => new Promise<void>((r) => setTimeout(r, 5));
  let stopped = false;
  let running: Promise<{ partials: number; folded: number; expired: number }> | null = null;

  async function pass(whole: boolean): Promise<{ partials: number; folded: number; expired: number }> {
    let partials = 0;
    let folded = 0;
    let expired = 0;
    const now = Date.now();
    for (;;) {
      const n = await o.repo.compactPartials(now - o.partialsKeepMs, BATCH);
      partials += n;
      if (n < BATCH || (stopped && !whole)) break;
      await pause();
    }
    // A long answer is in its whole message, its result message and its turn row: the result
    // message's copy is left out (and read back from the row) once the turn has ended.
    for (;;) {
      const rows = await o.repo.resultsToFold(now - o.partialsKeepMs, 200);
      const done = rows.map((r) => {
        const data = foldedResult(r.data, loadText(r.result));
        if (data !== null) folded++;
        return { session_id: r.session_id, seq: r.seq, data: data ?? undefined };
      });
      await o.repo.folded(done);
      if (rows.length < 200 || (stopped && !whole)) break;
      await pause();
    }
    if (o.retentionDays > 0) {
      const cutoff = now - o.retentionDays * 86_400_000;
      for (;;) {
        const n = await o.repo.expire(cutoff, BATCH);
        expired += n;
        if (n < BATCH || (stopped && !whole)) break;
        await pause();
      }
    }
    if (partials + folded + expired > 0) o.log.debug({ partials, folded, expired }, 'event log compacted');
    return { partials, folded, expired };
  }

  const run = (whole: boolean) => {
    running ??= pass(whole).finally(() => (running = null));
    return running;
  };
  // Often enough that partials do not outstay their time by much; never more than every 30 s.
  const every = Math.min(30_000, Math.max(1_000, Math.floor(o.partialsKeepMs / 2)));
  const timer = setInterval(() => {
    run(false).catch((err: unknown) => o.log.warn({ err }, 'could not compact the event log'));
  }, every);
  timer.unref();

  return {
    run: () => run(true),
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
