/**
 * @module turns/respond
 * The three ways a client receives a turn it started: wait for the finished Turn as JSON
 * (200), get the queued Turn at once (`?wait=false`, 202), or follow it as server-sent
 * events (`Accept: text/event-stream`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TurnRow } from '../storage/turns-repo.js';
import type { EventLog } from './events.js';
import { streamEvents } from './sse.js';

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
  if (afterSeq > 0) {
    const done = await s.events.doneSeq(turn.session_id, turn.turn_id);
    if (done !== null && done <= afterSeq) {
      await reply.code(204).send();
      return;
    }
  }
  streamEvents(req, reply, { ...s, sessionId: turn.session_id, turnId: turn.turn_id, afterSeq });
}
