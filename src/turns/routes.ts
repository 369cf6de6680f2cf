/**
 * @module turns/routes
 * HTTP routes that run, list, cancel and interrupt turns, and the SSE event streams.
 */
import { Type, type Static } from 'typebox';
import type { App } from '../types.js';
import { promptErrors, sessionErrors } from '../errors.js';
import type { TurnService } from './service.js';
import { presentTurn } from './present.js';
import { streamTurn, TURN_STREAM_RESPONSE, wantsEventStream, type StreamSettings } from './respond.js';
import { namesPosition, replayPosition, streamEvents, tailPosition } from './sse.js';
import {
  EventsQuerySchema,
  ListTurnsQuerySchema,
  SessionEventsQuerySchema,
  StartTurnBodySchema,
  TurnListSchema,
  TurnParamsSchema,
  WaitQuerySchema,
} from './schemas.js';
import { SessionParamsSchema } from '../schemas.js';

const tags = ['turns'];
const LastEventIdHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ description: 'Replay after this event id (what an EventSource sends when it reconnects); takes precedence over ?after=' }),
  ),
});
const sse = {
  description: 'Server-sent events: id (the session sequence number), event, data (JSON)',
  content: { 'text/event-stream': { schema: Type.String() } },
};

/** A turn's start, as the service takes it, from a request body. */
const startOf = (b: Static<typeof StartTurnBodySchema>) => ({
  prompt: b.prompt,
  ifBusy: b.if_busy,
  permissionMode: b.permission_mode,
  outputSchema: b.output_schema,
});

export async function turnRoutes(app: App, opts: { turns: TurnService; stream: StreamSettings; promptBodyLimit: number }) {
  const svc = opts.turns;

  app.post('/v1/sessions/:session_id/turns', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags,
      operationId: 'startTurn',
      summary: 'Run a prompt in the session: wait for the Turn (200) or ?wait=false (202). Streamed: streamTurn (or this path with Accept: text/event-stream)',
      params: SessionParamsSchema,
      querystring: WaitQuerySchema,
      body: StartTurnBodySchema,
      response: { 200: Type.Ref('Turn'), 202: Type.Ref('Turn'), ...sessionErrors, ...promptErrors },
    },
    handler: async (req, reply) => {
      const turn = await svc.start(req.caller, req.params.session_id, startOf(req.body));
      if (wantsEventStream(req)) return streamTurn(req, reply, turn, opts.stream);
      if (!req.query.wait) return reply.code(202).send(presentTurn((await svc.get(req.caller, turn.session_id, turn.turn_id)) ?? turn));
      return reply.code(200).send(presentTurn(await svc.wait(turn.turn_id)));
    },
  });

  app.post('/v1/sessions/:session_id/turns/stream', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags,
      operationId: 'streamTurn',
      summary: 'Run a prompt in the session and stream the turn as server-sent events (what startTurn does with Accept: text/event-stream)',
      params: SessionParamsSchema,
      body: StartTurnBodySchema,
      response: { 200: TURN_STREAM_RESPONSE, ...sessionErrors, ...promptErrors },
    },
    handler: async (req, reply) => streamTurn(req, reply, await svc.start(req.caller, req.params.session_id, startOf(req.body)), opts.stream),
  });

  app.get('/v1/sessions/:session_id/turns', {
    schema: {
      tags,
      operationId: 'listTurns',
      summary: 'Turn history of the session, oldest first (?status=queued: the visible queue)',
      params: SessionParamsSchema,
      querystring: ListTurnsQuerySchema,
      response: { 200: TurnListSchema, ...sessionErrors },
    },
    handler: async (req) => {
      const { turns, nextCursor } = await svc.list(req.caller, req.params.session_id, req.query);
      return { turns: turns.map(presentTurn), next_cursor: nextCursor };
    },
  });

  app.get('/v1/sessions/:session_id/turns/:turn_id', {
    schema: { tags, operationId: 'getTurn', summary: 'One turn', params: TurnParamsSchema, response: { 200: Type.Ref('Turn'), ...sessionErrors } },
    handler: async (req) => presentTurn(await svc.get(req.caller, req.params.session_id, req.params.turn_id)),
  });

  app.delete('/v1/sessions/:session_id/turns/:turn_id', {
    schema: {
      tags,
      operationId: 'cancelTurn',
      summary: 'Cancel a queued turn (it ends cancelled and never runs); 409 once it runs',
      params: TurnParamsSchema,
      response: { 200: Type.Ref('Turn'), ...sessionErrors },
    },
    handler: async (req) => presentTurn(await svc.cancel(req.caller, req.params.session_id, req.params.turn_id)),
  });

  app.get('/v1/sessions/:session_id/turns/:turn_id/events', {
    schema: {
      tags,
      operationId: 'turnEvents',
      summary: "The turn's events after Last-Event-ID (or ?after=), then live until it ends",
      params: TurnParamsSchema,
      querystring: EventsQuerySchema,
      headers: LastEventIdHeaders,
      response: {
        200: sse,
        204: { description: "The client already has the turn's done event: nothing more to send (an EventSource stops reconnecting)", type: 'null' },
        ...sessionErrors,
      },
    },
    handler: async (req, reply) => {
      const turn = await svc.get(req.caller, req.params.session_id, req.params.turn_id);
      return streamTurn(req, reply, turn, opts.stream, replayPosition(req, req.query.after));
    },
  });

  app.get('/v1/sessions/:session_id/events', {
    schema: {
      tags,
      operationId: 'sessionEvents',
      summary: 'Every event of every turn of the session after Last-Event-ID (or ?after=), then live',
      params: SessionParamsSchema,
      querystring: SessionEventsQuerySchema,
      headers: LastEventIdHeaders,
      response: { 200: sse, ...sessionErrors },
    },
    handler: async (req, reply) => {
      const id = req.params.session_id;
      await svc.session(req.caller, id);
      const { after, tail } = req.query;
      const afterSeq = tail && !namesPosition(req, after) ? await tailPosition(opts.stream.events, id, () => svc.running(id)) : replayPosition(req, after);
      streamEvents(req, reply, { ...opts.stream, sessionId: id, afterSeq });
    },
  });

  app.post('/v1/sessions/:session_id/interrupt', {
    schema: {
      tags,
      operationId: 'interruptTurn',
      summary: 'Stop the running turn (it ends interrupted; the session stays usable)',
      params: SessionParamsSchema,
      response: { 202: Type.Ref('Turn'), ...sessionErrors },
    },
    handler: async (req, reply) => reply.code(202).send(presentTurn(await svc.interrupt(req.caller, req.params.session_id))),
  });
}
