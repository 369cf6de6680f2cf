/**
 * @module turns/respond
 * The three ways a client receives a turn it started: wait for the finished Turn as JSON
 * (200), get the queued Turn at once (`?wait=false`, 202), or follow it as server-sent
 * events (`Accept: text/event-stream`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TurnRow } from '../storage/turns-repo.js';
import { ENDED } from '../schemas.js';
import type { EventLog } from '../events/log.js';
import { streamEnded, streamEvents } from './sse.js';
import { presentTurn } from './present.js';

export interface StreamSettings {
  events: EventLog;
  heartbeatMs: number;
  stallMs: number;
  onOpen?: () => void;
  onClose?: () => void;
}

/** True when the client accepts `text/event-stream` (and not with `q=0`). */
export function wantsEventStream(req: FastifyRequest): boolean {
  const accept = req.headers.accept?.toLowerCase();
  if (!accept || !accept.includes('text/event-stream')) return false;
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((x) => x.trim().toLowerCase());
    if (type !== 'text/event-stream') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

/**
 * Streams the events of one turn after `afterSeq` until its `done`. A client that already has the
 * `done` (an EventSource reconnecting after the stream ended sends its id) gets 204 No Content:
 * there is nothing more to send, and 204 is what tells an EventSource to stop reconnecting.
 */
export async function streamTurn(req: FastifyRequest, reply: FastifyReply, turn: TurnRow, s: StreamSettings, afterSeq = 0): Promise<void> {
  const ended = ENDED.includes(turn.status);
  if (afterSeq > 0 || ended) {
    const done = await s.events.doneSeq(turn.session_id, turn.turn_id);
    if (done !== null && done <= afterSeq) {
      await reply.code(204).send();
      return;
    }
    // (Not one that ended a moment ago, whose done may still be on its way to the log, unless the
    // log has moved on to later events: a turn's done is written before anything that follows it.)
    const movedOn = async () => {
      const first = (await s.events.after(turn.session_id, 0, { limit: 1 }))[0];
      return Boolean(first && first.turn_id !== turn.turn_id && first.created_at > Number(turn.finished_at ?? 0));
    };
    if (done === null && ended && (Date.now() - Number(turn.finished_at ?? 0) > 10_000 || (await movedOn()))) {
      // An ended turn whose events are gone (EVENT_RETENTION_DAYS): its end, from its row, and the stream ends.
      if (afterSeq > 0) await reply.code(204).send();
      else streamEnded(req, reply, presentTurn(turn));
      return;
    }
  }
  streamEvents(req, reply, { ...s, sessionId: turn.session_id, turnId: turn.turn_id, afterSeq });
}

/**
 * How a streaming operation's answer is documented: only server-sent events, so that code
 * generators give the JSON operations one JSON shape and these their own streaming call.
 */
export const TURN_STREAM_RESPONSE = {
  description:
    "The turn as server-sent events: each has an `id` (the session's event sequence number), an `event` type and JSON `data`; " +
    'the first is `turn` (the Turn, with its session_id), the last `done` (the final Turn). Reconnect with GET .../turns/{turn_id}/events and Last-Event-ID',
  content: { 'text/event-stream': { schema: { type: 'string' } } },
} as const;
