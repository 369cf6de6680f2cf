/**
 * @module sessions/schemas
 * The Session resource and the bodies of the session routes. The schema is the type.
 */
import { Type, type Static } from 'typebox';

import { AgentOptionsInputFields, AgentOptionsViewSchema, ModelNameSchema, PermissionModeSchema, SessionStatusSchema, UsageSchema, Uuid } from '../schemas.js';
import { PromptSchema } from '../turns/schemas.js';

export { PermissionModeSchema, SessionParamsSchema, Uuid } from '../schemas.js';
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const SessionSchema = Type.Object(
  {
    session_id: Uuid,
    user_id: Type.String(),
    session_name: Nullable(Type.String()),
    status: SessionStatusSchema,
    project: Type.String({ description: 'Path relative to the workspace root; "." for the root' }),
    cwd: Type.String({ description: 'Absolute working directory of the session' }),
    created_at: Type.String({ format: 'date-time' }),
    last_active: Type.String({ format: 'date-time' }),
    turn_count: Type.Integer(),
    running_turn_id: Type.Union([Type.String(), Type.Null()]),
    total_cost_usd: Type.Number(),
    usage: UsageSchema,
    transcript: Type.Object({
      path: Type.String({ description: 'Where the CLI keeps (or will keep) the transcript' }),
      exists: Type.Boolean(),
      bytes: Type.Integer(),
    }),
    first_prompt: Nullable(Type.String()),
    tag: Nullable(Type.String()),
    permission_mode: PermissionModeSchema,
    model: Nullable(Type.String()),
    agent: Type.Union([Type.Object({ agent_id: Type.String({ format: 'uuid' }), version: Type.Integer() }), Type.Null()], {
      description: 'The agent version the session was made from (null: none); a newer version applies to new sessions only',
    }),
    options: {
      ...AgentOptionsViewSchema,
      description: "The session's options: its agent's, with the session's own over them; secrets read {\"secret\": true}",
    },
  },
  { $id: 'Session' },
);
export type Session = Static<typeof SessionSchema>;

const Name = Type.String({ minLength: 1, maxLength: 200 });

export const CreateSessionBodySchema = Type.Object(
  {
    session_name: Type.Optional(Name),
    project: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    prompt: Type.Optional(PromptSchema),
    permission_mode: Type.Optional(PermissionModeSchema),
    model: Type.Optional(ModelNameSchema),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    agent_id: Type.Optional(
      Type.String({ format: 'uuid', description: 'Start from this agent (its options, model and mode; the fields below override them)' }),
    ),
    agent_version: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'That version of the agent (default: its newest)' })),
    ...AgentOptionsInputFields,
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBodySchema>;

export const ListSessionsQuerySchema = Type.Object(
  {
    status: Type.Optional(SessionStatusSchema),
    project: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "Admins only: another user's sessions" })),
  },
  { additionalProperties: false },
);
export type ListSessionsQuery = Static<typeof ListSessionsQuerySchema>;

export const SessionListSchema = Type.Object({
  sessions: Type.Array(Type.Ref('Session')),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const PatchSessionBodySchema = Type.Object(
  {
    session_name: Type.Optional(Name),
    status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('archived')])),
    tag: Type.Optional(Type.Union([Type.String({ minLength: 1, maxLength: 100 }), Type.Null()])),
  },
  { additionalProperties: false, minProperties: 1 },
);
export type PatchSessionBody = Static<typeof PatchSessionBodySchema>;

export const DeleteQuerySchema = Type.Object({ purge: Type.Boolean({ default: false }) }, { additionalProperties: false });

export const ForkBodySchema = Type.Object(
  {
    up_to_message_id: Type.Optional(Type.String({ format: 'uuid' })),
    session_name: Type.Optional(Name),
  },
  { additionalProperties: false },
);
export type ForkBody = Static<typeof ForkBodySchema>;

export const ImportBodySchema = Type.Object(
  {
    project: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    user_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ImportBody = Static<typeof ImportBodySchema>;

export const ImportResultSchema = Type.Object({
  imported: Type.Integer({ description: 'How many sessions were adopted by this call' }),
  already_known: Type.Integer({ description: 'How many were found that the server already knew' }),
  sessions: Type.Array(Type.Ref('Session'), { description: 'The sessions adopted by this call' }),
});

export const MessagesQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 100 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
    order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], {
      default: 'asc',
      description: 'asc: conversation order, offset from the first message; desc: newest first, offset from the newest (a chat reads its latest page first)',
    }),
  },
  { additionalProperties: false },
);

export const MessageSchema = Type.Object({
  type: Type.Union([Type.Literal('user'), Type.Literal('assistant'), Type.Literal('system')]),
  uuid: Type.String(),
  session_id: Type.String(),
  message: Type.Unknown({ description: 'The message as the SDK returns it (role, content blocks)' }),
  parent_tool_use_id: Type.Union([Type.String(), Type.Null()]),
});

export const MessagesPageSchema = Type.Object({
  messages: Type.Array(MessageSchema),
  offset: Type.Integer(),
  limit: Type.Integer(),
  next_offset: Type.Union([Type.Integer(), Type.Null()]),
  order: Type.Union([Type.Literal('asc'), Type.Literal('desc')]),
});
