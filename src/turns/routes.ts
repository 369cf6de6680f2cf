/**
 * @module turns/routes
 * HTTP routes that run turns, and the original `/v1/query` contract.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { sessionErrors } from '../errors.js';
import type { TurnService } from './service.js';
import type { SessionService } from '../sessions/service.js';
import { presentTurn } from './present.js';
import { ListTurnsQuerySchema, QueryBodySchema, QueryResultSchema, StartTurnBodySchema, TurnListSchema, TurnParamsSchema } from './schemas.js';
import { SessionParamsSchema } from '../sessions/schemas.js';

const tags = ['turns'];

export async function turnRoutes(app: App, opts: { turns: TurnService; sessions: SessionService }) {
  const svc = opts.turns;

  app.post('/v1/sessions/:session_id/turns', {
    schema: {
      tags,
      operationId: 'startTurn',
      summary: 'Run a prompt in the session and answer the finished turn',
      params: SessionParamsSchema,
      body: StartTurnBodySchema,
      response: { 200: Type.Ref('Turn'), ...sessionErrors },
    },
    handler: async (req) =>
      presentTurn(await svc.run(req.caller, req.params.session_id, { prompt: req.body.prompt, ifBusy: req.body.if_busy, permissionMode: req.body.permission_mode })),
  });

  app.get('/v1/sessions/:session_id/turns', {
    schema: {
      tags,
      operationId: 'listTurns',
      summary: 'Turn history of the session, oldest first',
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

  app.post('/v1/query', {
    schema: {
      tags,
      operationId: 'query',
      summary: 'The original contract: run `query` in `session_id` (a new session when absent)',
      body: QueryBodySchema,
      response: { 200: QueryResultSchema, ...sessionErrors },
    },
    handler: async (req) => {
      const b = req.body;
      let turn;
      if (b.session_id) {
        turn = await svc.run(req.caller, b.session_id, { prompt: b.query, ifBusy: b.if_busy, permissionMode: b.permission_mode });
      } else {
        turn = (await opts.sessions.create(req.caller, { prompt: b.query, project: b.project, permission_mode: b.permission_mode })).turn!;
      }
      const t = presentTurn(turn);
      return { session_id: t.session_id, turn_id: t.turn_id, status: t.status, result: t.result, error: t.error, duration_ms: t.duration_ms, cost_usd: t.cost_usd, usage: t.usage };
    },
  });
}
