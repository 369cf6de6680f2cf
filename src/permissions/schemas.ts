/**
 * @module permissions/schemas
 * A permission request as the API shows it, and a person's decision: the types are derived from these.
 */
import { Type, type Static } from 'typebox';
import { PermissionStatusSchema } from '../schemas.js';

export const PermissionRequestSchema = Type.Object(
  {
    request_id: Type.String({ format: 'uuid' }),
    session_id: Type.String({ format: 'uuid' }),
    turn_id: Type.String(),
    tool_name: Type.String(),
    tool_use_id: Type.String(),
    input: Type.Record(Type.String(), Type.Unknown()),
    suggestions: Type.Array(Type.Unknown(), { description: 'Permission updates that allow the same call again (scope "session")' }),
    status: PermissionStatusSchema,
    scope: Type.Union([Type.Literal('once'), Type.Literal('session'), Type.Null()]),
    decided_by: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    expires_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'PermissionRequest' },
);

export const DecisionBodySchema = Type.Object(
  {
    behavior: Type.Union([Type.Literal('allow'), Type.Literal('deny')]),
    scope: Type.Optional(
      Type.Union([Type.Literal('once'), Type.Literal('session')], { description: 'session: the same call is allowed for the rest of the session' }),
    ),
    updated_input: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Run the tool with this input instead' })),
    message: Type.Optional(Type.String({ minLength: 1, maxLength: 2000, description: 'Told to the model (with deny)' })),
  },
  { additionalProperties: false },
);
export type PermissionRequest = Static<typeof PermissionRequestSchema>;
export type DecideInput = Static<typeof DecisionBodySchema>;
