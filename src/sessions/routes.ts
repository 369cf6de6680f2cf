/**
 * @module sessions/routes
 * HTTP routes of the session resource, and the original `/v1/query` contract (a turn in a
 * new or given session). Each route declares its schemas; handlers only call the services.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { commonErrors, sessionErrors } from '../errors.js';
import type { SessionService } from './service.js';
import { presentTurn } from '../turns/present.js';
import type { TurnService } from '../turns/service.js';
import { streamTurn, wantsEventStream, type StreamSettings } from '../turns/respond.js';
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

  app.post('/v1/sessions', {
    bodyLimit: opts.promptBodyLimit,
    schema: {
      tags,
      operationId: 'createSession',
      summary: 'Create a session; with `prompt`, run its first turn (wait for it, ?wait=false, or SSE)',
      querystring: WaitQuerySchema,
      body: CreateSessionBodySchema,
      response: {
        201: Type.Intersect([SessionRef, Type.Object({ turn: Type.Optional(Type.Union([Type.Ref('Turn'), Type.Null()])) })], {
          description: 'The Session and its first Turn (null without a prompt)',
        }),
        200: {
          description: 'With a prompt and Accept: text/event-stream: the first turn as server-sent events (the session id is in the first `turn` event)',
          content: { 'text/event-stream': { schema: { type: 'string' } } },
        },
        ...commonErrors,
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
      summary: 'The transcript: user and assistant messages in conversation order',
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
      summary: 'The original contract: run `query` in `session_id` (a new session when absent)',
      querystring: WaitQuerySchema,
      body: QueryBodySchema,
      response: {
        200: {
          description: 'The finished turn; SSE with Accept: text/event-stream',
          content: { 'application/json': { schema: QueryResultSchema }, 'text/event-stream': { schema: Type.String() } },
        },
        202: QueryResultSchema,
        ...sessionErrors,
      },
    },
    handler: async (req, reply) => {
      const b = req.body;
      const turn = b.session_id
        ? await opts.turns.start(req.caller, b.session_id, {
            prompt: b.query,
            ifBusy: b.if_busy,
            permissionMode: b.permission_mode,
            outputSchema: b.output_schema,
          })
        : (
            await opts.sessions.create(
              req.caller,
              { prompt: b.query, project: b.project, permission_mode: b.permission_mode },
              { outputSchema: b.output_schema },
            )
          ).turn!;
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
}
