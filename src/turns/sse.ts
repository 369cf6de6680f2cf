/**
 * @module turns/sse
 * Server-sent events from the event log: replay after a position, then follow live. A slow
 * client never makes the server buffer without bound: when the socket stops taking data the
 * stream pauses, live events are left in the database, and on `drain` it catches up from
 * there; a client stalled longer than `stallMs` is dropped. A heartbeat comment keeps
 * proxies from closing an idle stream. A client that goes away does not stop the turn.
 */
import { AppError } from '../errors.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventLog, SessionEvent } from '../events/log.js';

export interface SseOptions {
  events: EventLog;
  sessionId: string;
  /** Replay events after this sequence number. */
  afterSeq: number;
  /** Only this turn's events; the stream ends after its `done`. */
  turnId?: string | undefined;
  heartbeatMs: number;
  stallMs: number;
  /** Told when a subscriber opens and closes (metrics). */
  onOpen?: () => void;
  onClose?: () => void;
}

/** Reads the replay position from `Last-Event-ID` or `?after=`; 0 when neither is given. */
export function replayPosition(req: FastifyRequest, after: number | undefined): number {
  const header = req.headers['last-event-id'];
  const v = Array.isArray(header) ? header[0] : header;
  const id = v?.trim() ?? '';
  if (id === '') return after ?? 0;
  // Checked like ?after=: a client that sends a position it was never given learns so.
  if (!/^\d{1,15}$/.test(id)) throw new AppError('INVALID_REQUEST', 'Last-Event-ID must be the id of an event (a non-negative integer)');
  return Number(id);
}

/** Whether the request names a replay position (Last-Event-ID or ?after=). */
export function namesPosition(req: FastifyRequest, after: number | undefined): boolean {
  const header = req.headers['last-event-id'];
  return after !== undefined || Boolean((Array.isArray(header) ? header[0] : header)?.trim());
}

/**
 * The position a `tail` stream replays after: just before the running turn's start (its `turn` event
 * with status running: a turn that waited in the queue is not replayed from when it was queued, with
 * the turns that ran meanwhile), else the newest event. The newest position is read before the running
 * turn, so a turn that starts between the two reads is replayed, not missed.
 */
export async function tailPosition(events: EventLog, sessionId: string, runningTurn: () => Promise<string | null>): Promise<number> {
  const last = await events.lastSeq(sessionId);
  const running = await runningTurn();
  if (running) {
    const first = await events.after(sessionId, 0, { turnId: running, limit: 20 });
    // (Not yet in the log: the turn has just been taken from the queue, and starts after `last`.)
    const start = first.find((e) => e.type === 'turn' && (e.data as { status?: unknown } | null)?.status === 'running');
    if (start) return Math.min(last, start.seq - 1);
  }
  return last;
}

/** Events read per page of a replay; between pages other requests get their turn. */
const PAGE = 50;

/** A turn's end as a stream of its own (its events are gone): `turn` and `done`, without ids, then the end. */
export function streamEnded(req: FastifyRequest, reply: FastifyReply, turn: unknown): void {
  reply.hijack();
  const data = JSON.stringify(turn);
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-request-id': req.id });
  reply.raw.end(`event: turn\ndata: ${data}\n\nevent: done\ndata: ${data}\n\n`);
}
const yieldToOthers = () => new Promise<void>((r) => setImmediate(r));

/** Each event's frame, made once however many streams send it (hundreds may follow one session). */
const frames = new WeakMap<SessionEvent, string>();
function frameOf(e: SessionEvent): string {
  let f = frames.get(e);
  if (f === undefined) {
    f = `id: ${e.seq}\nevent: ${e.type}\ndata: ${e.raw ?? JSON.stringify(e.data)}\n\n`;
    frames.set(e, f);
  }
  return f;
}

export function streamEvents(req: FastifyRequest, reply: FastifyReply, o: SseOptions): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': req.id,
  });
  res.write(': stream open\n\n');
  o.onOpen?.();

  let last = o.afterSeq;
  let paused = false;
  let pumping = false;
  let dirty = false;
  let closed = false;
  let pausedAt = 0;
  /** Events read from the log but not sent yet (the socket was full). */
  let held: SessionEvent[] = [];

  const end = () => {
    if (closed) return;
    closed = true;
    clearInterval(beat);
    unsubscribe();
    o.onClose?.();
    if (!res.writableEnded) res.end();
  };

  /** Writes one event; false when the stream must stop writing (paused or ended). */
  const send = (e: SessionEvent): boolean => {
    if (closed || e.seq <= last) return !closed;
    last = e.seq;
    const ok = res.write(frameOf(e));
    if (o.turnId && e.type === 'done') {
      end();
      return false;
    }
    if (!ok) {
      paused = true;
      pausedAt = Date.now();
      // Resumed from the event loop, not from 'drain' itself: a fast reader's socket drains at once
      // (in the same tick), and resuming there would chain a whole replay past every other request.
      res.once('drain', () =>
        setImmediate(() => {
          paused = false;
          void pump();
        }),
      );
      return false;
    }
    return true;
  };

  /** Copies stored events after `last` until caught up (or paused). */
  const pump = async (): Promise<void> => {
    if (pumping || closed) {
      dirty = true;
      return;
    }
    pumping = true;
    try {
      // What a full socket left of the last page goes first: a page is read (and its results put
      // back) once, however often the client's socket fills.
      while (held.length > 0) if (!send(held.shift()!)) return;
      do {
        dirty = false;
        for (;;) {
          const rows = await o.events.after(o.sessionId, last, { turnId: o.turnId, limit: PAGE });
          for (let i = 0; i < rows.length; i++) {
            if (!send(rows[i]!)) {
              held = rows.slice(i + 1);
              return;
            }
          }
          if (rows.length < PAGE) break;
          await yieldToOthers();
        }
      } while (dirty && !closed && !paused);
    } catch (err) {
      req.log.warn({ err }, 'event stream failed');
      end();
    } finally {
      pumping = false;
    }
  };

  // Subscribe first, then replay: anything announced meanwhile is caught by the re-check.
  const unsubscribe = o.events.subscribe(o.sessionId, (e) => {
    // Several writers (replicas): events are read back in order rather than sent as they come.
    if (!e || !o.events.direct) {
      // The next number and nothing pending: nothing can be missing before it, send it as it comes.
      if (e && !paused && !pumping && e.seq === last + 1 && (!o.turnId || e.turn_id === o.turnId)) send(e);
      else if (paused) dirty = true;
      else void pump();
      return;
    }
    if (o.turnId && e.turn_id !== o.turnId) return;
    if (paused || pumping) {
      dirty = true;
      return;
    }
    send(e);
  });
  const beat = setInterval(() => {
    if (paused) {
      if (Date.now() - pausedAt > o.stallMs) {
        req.log.info({ session_id: o.sessionId }, 'dropping a stalled event stream client');
        res.destroy();
        end();
      }
      return;
    }
    res.write(': heartbeat\n\n');
  }, o.heartbeatMs);
  req.raw.on('close', end);
  res.on('close', end);
  void pump();
}
