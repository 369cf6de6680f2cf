/**
 * @module agents/schemas
 * The Agent resource and the bodies of the agent routes. The schema is the type.
 */
import { Type, type Static, type TNull, type TOptional, type TSchema, type TUnion } from 'typebox';
import { AgentOptionsInputFields, AgentOptionsViewSchema, ModelNameSchema, PermissionModeSchema } from '../schemas.js';

const Name = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.String({ maxLength: 2000 });
export const AgentId = Type.String({ format: 'uuid', description: 'An agent id' });

export const AgentSchema = Type.Intersect(
  [
    Type.Object({
      agent_id: AgentId,
      version: Type.Integer({ minimum: 1, description: 'This version of the agent (every update makes a new one)' }),
      latest_version: Type.Integer({ minimum: 1 }),
      name: Type.String(),
      description: Type.Union([Type.String(), Type.Null()]),
      user_id: Type.String({ description: 'The owner; for a shared agent, the admin who made it' }),
      shared: Type.Boolean({ description: 'Every user may start sessions from it (made by an admin)' }),
      archived: Type.Boolean({ description: 'Archived agents start no new sessions; their sessions go on' }),
      created_at: Type.String({ format: 'date-time' }),
      version_created_at: Type.String({ format: 'date-time' }),
      model: Type.Union([Type.String(), Type.Null()]),
      permission_mode: Type.Union([PermissionModeSchema, Type.Null()]),
    }),
    AgentOptionsViewSchema,
  ],
  { $id: 'Agent', description: 'An agent at one version; secret values read {"secret": true}' },
);

export const CreateAgentBodySchema = Type.Object(
  {
    name: Name,
    description: Type.Optional(Description),
    shared: Type.Optional(Type.Boolean({ description: 'Admins only: every user may use it (but never read its secrets)' })),
    model: Type.Optional(ModelNameSchema),
    permission_mode: Type.Optional(PermissionModeSchema),
    ...AgentOptionsInputFields,
  },
  { additionalProperties: false },
);
export type CreateAgentBody = Static<typeof CreateAgentBodySchema>;

/** The same fields, each optional and nullable (null removes it). */
const nullable = <T extends Record<string, TSchema>>(fields: T) =>
  Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, Type.Optional(Type.Union([v, Type.Null()]))])) as unknown as {
    [K in keyof T]: TOptional<TUnion<[T[K], TNull]>>;
  };

export const UpdateAgentBodySchema = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Type.Union([Description, Type.Null()])),
    expected_version: Type.Optional(Type.Integer({ minimum: 1, description: 'Refuse (409 AGENT_CHANGED) unless this is still the newest version' })),
    model: Type.Optional(Type.Union([ModelNameSchema, Type.Null()])),
    permission_mode: Type.Optional(Type.Union([PermissionModeSchema, Type.Null()])),
    ...nullable(AgentOptionsInputFields),
  },
  { additionalProperties: false, minProperties: 1, description: 'The fields to change (null removes one); the result is a new version' },
);
export type UpdateAgentBody = Static<typeof UpdateAgentBodySchema>;

export const AgentParamsSchema = Type.Object({ agent_id: AgentId });
export const AgentVersionParamsSchema = Type.Object({ agent_id: AgentId, version: Type.Integer({ minimum: 1, maximum: 1_000_000_000 }) });

export const ListAgentsQuerySchema = Type.Object(
  {
    archived: Type.Boolean({ default: false, description: 'true: the archived ones instead' }),
    mine: Type.Boolean({ default: false, description: 'true: only agents the caller owns (no shared ones)' }),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ListAgentsQuery = Static<typeof ListAgentsQuerySchema>;

export const ListVersionsQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,10}$', description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const AgentListSchema = Type.Object({ agents: Type.Array(Type.Ref('Agent')), next_cursor: Type.Union([Type.String(), Type.Null()]) });
export const AgentVersionListSchema = Type.Object({ versions: Type.Array(Type.Ref('Agent')), next_cursor: Type.Union([Type.String(), Type.Null()]) });
export type Agent = Static<typeof AgentSchema>;
