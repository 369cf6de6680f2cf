/**
 * @module permissions/routes
 * Pending tool-permission requests of a session and their decision.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { sessionErrors } from '../errors.js';
import { SessionParamsSchema } from '../schemas.js';
import type { Approvals } from './service.js';
import { presentRequest } from './policy.js';
import { DecisionBodySchema, PermissionRequestSchema } from './schemas.js';

const tags = ['permissions'];

export async function permissionRoutes(app: App, opts: { approvals: Approvals }) {
  app.get('/v1/sessions/:session_id/permissions', {
    schema: {
      tags,
      operationId: 'listPermissionRequests',
      summary: 'Pending tool-permission requests of the session (?status=all: also decided ones, newest first)',
      params: SessionParamsSchema,
      querystring: Type.Object(
        {
          status: Type.Union([Type.Literal('pending'), Type.Literal('all')], {
            default: 'pending',
            description: 'pending: the requests waiting for a decision, oldest first; all: the newest `limit` requests whatever their status, newest first',
          }),
          limit: Type.Integer({ minimum: 1, maximum: 500, default: 100, description: 'With status=all' }),
        },
        { additionalProperties: false },
      ),
      response: { 200: Type.Object({ requests: Type.Array(PermissionRequestSchema) }), ...sessionErrors },
    },
    handler: async (req) => ({ requests: (await opts.approvals.list(req.caller, req.params.session_id, req.query)).map(presentRequest) }),
  });

  app.post('/v1/sessions/:session_id/permissions/:request_id', {
    schema: {
      tags,
      operationId: 'decidePermissionRequest',
      summary: 'Allow or deny a pending tool call (409 if it was already decided or has expired)',
      params: Type.Object({ session_id: Type.String({ format: 'uuid' }), request_id: Type.String({ format: 'uuid' }) }),
      body: DecisionBodySchema,
      response: { 200: PermissionRequestSchema, ...sessionErrors },
    },
    handler: async (req) => presentRequest(await opts.approvals.decide(req.caller, req.params.session_id, req.params.request_id, req.body)),
  });
}
