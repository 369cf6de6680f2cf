/**
 * @module permissions/routes
 * Pending tool-permission requests of a session and their decision.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { sessionErrors } from '../errors.js';
import { SessionParamsSchema } from '../sessions/schemas.js';
import { presentRequest, type Approvals } from './service.js';

const tags = ['permissions'];

const PermissionRequestSchema = Type.Object(
  {
    request_id: Type.String({ format: 'uuid' }),
    session_id: Type.String({ format: 'uuid' }),
    turn_id: Type.String(),
    tool_name: Type.String(),
    tool_use_id: Type.String(),
    input: Type.Record(Type.String(), Type.Unknown()),
    suggestions: Type.Array(Type.Unknown(), { description: 'Permission updates that allow the same call again (scope "session")' }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('allowed'), Type.Literal('denied'), Type.Literal('expired')]),
    scope: Type.Union([Type.Literal('once'), Type.Literal('session'), Type.Null()]),
    decided_by: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    expires_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'PermissionRequest' },
);

const DecisionBodySchema = Type.Object(
  {
    behavior: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
    scope: Type.Optional(Type.Union([Type.Literal('once'), Type.Literal('session')], { description: 'session: the same call is allowed for the rest of the session' })),
    updated_input: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Run the tool with this input instead' })),
    message: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'Told to the model (with deny)' })),
  },
  { additionalProperties: false },
);

export async function permissionRoutes(app: App, opts: { approvals: Approvals }) {
  app.get('/v1/sessions/:session_id/permissions', {
    schema: {
      tags,
      operationId: 'listPermissionRequests',
      summary: 'Pending tool-permission requests of the session',
      params: SessionParamsSchema,
      response: { 200: Type.Object({ requests: Type.Array(PermissionRequestSchema) }), ...sessionErrors },
    },
    handler: async (req) => ({ requests: (await opts.approvals.list(req.caller, req.params.session_id)).map(presentRequest) }),
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
