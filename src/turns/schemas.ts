/**
 * @module turns/schemas
 * The Turn resource and the bodies of the turn routes.
 */
import { Type, type Static } from 'typebox';
import { PermissionModeSchema, TurnStatusSchema, Uuid, UsageSchema } from '../schemas.js';
import { TurnErrorSchema } from '../errors.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

export const TurnSchema = Type.Object(
  {
    turn_id: Type.String({ format: 'uuid' }),
    session_id: Uuid,
    status: TurnStatusSchema,
    prompt: Type.String(),
    result: NullableString,
    error: Type.Union([TurnErrorSchema, Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
    started_at: NullableString,
    finished_at: NullableString,
    duration_ms: NullableNumber,
    cost_usd: NullableNumber,
    usage: Type.Union([UsageSchema, Type.Null()]),
  },
  { $id: 'Turn' },
);
export type Turn = Static<typeof TurnSchema>;

/** What a turn sent to a busy session does. */
export const IfBusySchema = Type.Union([Type.Literal('reject'), Type.Literal('queue'), Type.Literal('interrupt')]);
export type IfBusy = Static<typeof IfBusySchema>;

export const StartTurnBodySchema = Type.Object(
  {
    prompt: Type.String({ minLength: 1, description: 'Text sent to Claude verbatim' }),
    if_busy: {
      ...IfBusySchema,
      default: 'reject',
      description: 'When the session is busy: reject (409 SESSION_BUSY), queue (wait in line), interrupt (stop the running turn, then run)',
    },
    permission_mode: Type.Optional(PermissionModeSchema),
  },
  { additionalProperties: false },
);
export type StartTurnBody = Static<typeof StartTurnBodySchema>;

export const WaitQuerySchema = Type.Object(
  { wait: Type.Boolean({ default: true, description: 'false: answer 202 with the queued Turn at once' }) },
  { additionalProperties: false },
);

export const EventsQuerySchema = Type.Object(
  // The same bound as Last-Event-ID's (at most 15 digits): both name an event id.
  {
    after: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 999_999_999_999_999, description: 'Replay events after this id (Last-Event-ID wins when both are given)' }),
    ),
  },
  { additionalProperties: false },
);

export const TurnParamsSchema = Type.Object({ session_id: Uuid, turn_id: Type.String({ format: 'uuid' }) });

export const ListTurnsQuerySchema = Type.Object(
  {
    status: Type.Optional(TurnStatusSchema),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);

export const TurnListSchema = Type.Object({
  turns: Type.Array(Type.Ref('Turn')),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const QueryBodySchema = Type.Object(
  {
    session_id: Type.Optional(Uuid),
    query: Type.String({ minLength: 1, description: 'The prompt' }),
    project: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: 'For a new session (no session_id)' })),
    permission_mode: Type.Optional(PermissionModeSchema),
    if_busy: Type.Optional(IfBusySchema),
  },
  { additionalProperties: false },
);
export type QueryBody = Static<typeof QueryBodySchema>;

export const QueryResultSchema = Type.Object({
  session_id: Uuid,
  turn_id: Type.String({ format: 'uuid' }),
  status: TurnStatusSchema,
  result: NullableString,
  error: Type.Union([TurnErrorSchema, Type.Null()]),
  duration_ms: NullableNumber,
  cost_usd: NullableNumber,
  usage: Type.Union([UsageSchema, Type.Null()]),
});
