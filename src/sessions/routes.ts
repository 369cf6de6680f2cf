/**
 * @module sessions/routes
 * HTTP routes of the session resource, and the original `/v1/query` contract (a turn in a
 * new or given session). Each route declares its schemas; handlers only call the services.
 */
import { Type, type Static } from 'typebox';
import type { Caller } from '../auth/access.js';
import type { App } from '../types.js';
import { AppError, commonErrors, promptErrors, sessionErrors } from '../errors.js';
import type { SessionService } from './service.js';
import { presentTurn } from '../turns/present.js';
import type { TurnService } from '../turns/service.js';
import { streamTurn, TURN_STREAM_RESPONSE, wantsEventStream, type StreamSettings } from '../turns/respond.js';
import { QueryBodySchema, QueryResultSchema, WaitQuerySchema } from '../turns/schemas.js';
import {
  CreateSessionBodySchema,
  DeleteQuerySchema,
  ForkBodySchema,
  ImportBodySchema,
  ImportResultSchema,
  ListSessionsQuerySchema,
  MessagesPageSchema,
  MessagesQuerySchema,
  PatchSessionBodySchema,
  SessionListSchema,
  SessionParamsSchema,
} from './schemas.js';

const tags = ['sessions'];
const SessionRef = Type.Ref('Session');

export async function sessionRoutes(app: App, opts: { sessions: SessionService; turns: TurnService; stream: StreamSettings; promptBodyLimit: number }) {
  const svc = opts.sessions;
  /** A /v1/query turn: in the given session, or the first of a new one. */
  const startQuery = async (caller: Caller, b: Static<typeof QueryBodySchema>) =>
    b.session_id
      ? opts.turns.start(caller, b.session_id, { prompt: b.query, ifBusy: b.if_busy, permissionMode: b.permission_mode, outputSchema: b.output_schema })
      : (await svc.create(caller, { prompt: b.query, project: b.project, permission_mode: b.permission_mode }, { outputSchema: b.output_schema })).turn!;

  app.post('/v1/sessions', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags,
      operationId: 'createSession',
      summary:
        'Create a session; with `prompt`, run its first turn (wait for it, or ?wait=false). Streamed: createSessionStream (or this path with Accept: text/event-stream)',
      querystring: WaitQuerySchema,
      body: CreateSessionBodySchema,
      response: {
        201: Type.Intersect([SessionRef, Type.Object({ turn: Type.Optional(Type.Union([Type.Ref('Turn'), Type.Null()])) })], {
          description: 'The Session and its first Turn (null without a prompt)',
        }),
        ...commonErrors,
        ...promptErrors,
        404: Type.Ref('Error'),
        409: Type.Ref('Error'),
      },
    },
    handler: async (req, reply) => {
      const { session, turn } = await svc.create(req.caller, req.body);
      if (!turn) return reply.code(201).send({ ...session, turn: null });
      if (wantsEventStream(req)) return streamTurn(req, reply, turn, opts.stream);
      const t = req.query.wait ? await opts.turns.wait(turn.turn_id) : turn;
      return reply.code(201).send({ ...(await svc.get(req.caller, session.session_id)), turn: presentTurn(t) });
    },
  });

  app.post('/v1/sessions/stream', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags,
      operationId: 'createSessionStream',
      summary: 'Create a session and stream its first turn (`prompt` required) as server-sent events; the session id is in the first `turn` event',
      body: CreateSessionBodySchema,
      response: { 200: TURN_STREAM_RESPONSE, ...commonErrors, ...promptErrors, 404: Type.Ref('Error'), 409: Type.Ref('Error') },
    },
    handler: async (req, reply) => {
      if (req.body.prompt === undefined) {
        throw new AppError('INVALID_REQUEST', 'body.prompt: required here (the first turn is what is streamed)', { details: { field: 'body.prompt' } });
      }
      const { turn } = await svc.create(req.caller, req.body);
      return streamTurn(req, reply, turn!, opts.stream);
    },
  });

  app.get('/v1/sessions', {
    schema: {
      tags,
      operationId: 'listSessions',
      summary: "The caller's sessions, newest activity first",
      querystring: ListSessionsQuerySchema,
      response: { 200: SessionListSchema, ...commonErrors },
    },
    handler: async (req) => svc.list(req.caller, req.query),
  });

  app.post('/v1/sessions/import', {
    schema: {
      tags,
      operationId: 'importSessions',
      summary: 'Adopt transcripts already on disk for workspace folders (idempotent)',
      body: ImportBodySchema,
      response: { 200: ImportResultSchema, ...commonErrors },
    },
    handler: async (req) => svc.importFromWorkspace(req.caller, req.body),
  });

  app.get('/v1/sessions/:session_id', {
    schema: { tags, operationId: 'getSession', summary: 'One session', params: SessionParamsSchema, response: { 200: SessionRef, ...sessionErrors } },
    handler: async (req) => svc.get(req.caller, req.params.session_id),
  });

  app.patch('/v1/sessions/:session_id', {
    schema: {
      tags,
      operationId: 'updateSession',
      summary: 'Rename, tag, archive or unarchive (also written to the transcript, as the CLI would)',
      params: SessionParamsSchema,
      body: PatchSessionBodySchema,
      response: { 200: SessionRef, ...sessionErrors },
    },
    handler: async (req) => svc.patch(req.caller, req.params.session_id, req.body),
  });

  app.delete('/v1/sessions/:session_id', {
    schema: {
      tags,
      operationId: 'deleteSession',
      summary: 'Soft delete (cancels queued turns, interrupts the running one); with purge=true also remove its events, turns, approvals and transcript',
      params: SessionParamsSchema,
      querystring: DeleteQuerySchema,
      response: { 200: SessionRef, ...sessionErrors },
    },
    handler: async (req) => svc.remove(req.caller, req.params.session_id, req.query.purge),
  });

  app.post('/v1/sessions/:session_id/fork', {
    schema: {
      tags,
      operationId: 'forkSession',
      summary: 'Copy a session into a new one, optionally up to a message',
      params: SessionParamsSchema,
      body: ForkBodySchema,
      response: { 201: SessionRef, ...sessionErrors },
    },
    handler: async (req, reply) => reply.code(201).send(await svc.fork(req.caller, req.params.session_id, req.body)),
  });

  app.get('/v1/sessions/:session_id/messages', {
    schema: {
      tags,
      operationId: 'getSessionMessages',
      summary: 'The transcript: user and assistant messages in conversation order (order=desc: newest first)',
      params: SessionParamsSchema,
      querystring: MessagesQuerySchema,
      response: { 200: MessagesPageSchema, ...sessionErrors },
    },
    handler: async (req) => svc.messages(req.caller, req.params.session_id, req.query),
  });

  app.post('/v1/query', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags: ['turns'],
      operationId: 'query',
      summary:
        'The original contract: run `query` in `session_id` (a new session when absent). Streamed: queryStream (or this path with Accept: text/event-stream)',
      querystring: WaitQuerySchema,
      body: QueryBodySchema,
      response: {
        200: QueryResultSchema,
        202: QueryResultSchema,
        ...sessionErrors,
        ...promptErrors,
      },
    },
    handler: async (req, reply) => {
      const turn = await startQuery(req.caller, req.body);
      if (wantsEventStream(req)) return streamTurn(req, reply, turn, opts.stream);
      const t = presentTurn(req.query.wait ? await opts.turns.wait(turn.turn_id) : turn);
      const body = {
        session_id: t.session_id,
        turn_id: t.turn_id,
        status: t.status,
        result: t.result,
        error: t.error,
        duration_ms: t.duration_ms,
        cost_usd: t.cost_usd,
        usage: t.usage,
        structured_output: t.structured_output,
      };
      return reply.code(req.query.wait ? 200 : 202).send(body);
    },
  });

  app.post('/v1/query/stream', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags: ['turns'],
      operationId: 'queryStream',
      summary: 'The original contract, streamed: run `query` in `session_id` (a new session when absent) as server-sent events',
      body: QueryBodySchema,
      response: { 200: TURN_STREAM_RESPONSE, ...sessionErrors, ...promptErrors },
    },
    handler: async (req, reply) => streamTurn(req, reply, await startQuery(req.caller, req.body), opts.stream),
  });
}
