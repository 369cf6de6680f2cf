/**
 * @module turns/schemas
 * The Turn resource and the bodies of the turn routes.
 */
import { Type, type Static } from 'typebox';
import { OutputSchemaSchema, PermissionModeSchema, TurnStatusSchema, Uuid, UsageSchema } from '../schemas.js';
import { TurnErrorSchema } from '../errors.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);

export const AttachmentSummarySchema = Type.Object({
  type: Type.Union([Type.Literal('image'), Type.Literal('document')]),
  media_type: Type.String(),
  bytes: Type.Integer({ description: 'Decoded size' }),
});
export type AttachmentSummary = Static<typeof AttachmentSummarySchema>;

const Base64Source = Type.Object(
  {
    type: Type.Literal('base64'),
    media_type: Type.String({ minLength: 1, maxLength: 100, description: 'image/png, image/jpeg, image/gif, image/webp; application/pdf for a document' }),
    data: Type.String({ minLength: 1, description: 'The bytes, base64' }),
  },
  { additionalProperties: false },
);
export const ContentBlockSchema = Type.Union([
  Type.Object({ type: Type.Literal('text'), text: Type.String({ minLength: 1 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('image'), source: Base64Source }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('document'), source: Base64Source, title: Type.Optional(Type.String({ maxLength: 500 })) }, { additionalProperties: false }),
]);
export type ContentBlock = Static<typeof ContentBlockSchema>;

/** A prompt: text sent verbatim, or content blocks (text, images, PDF documents) as the Messages API takes them. */
export const PromptSchema = Type.Union(
  [Type.String({ minLength: 1, description: 'Text sent to Claude verbatim' }), Type.Array(ContentBlockSchema, { minItems: 1, maxItems: 200 })],
  { description: 'Text, or a list of content blocks: text, image and document (base64, with its media type)' },
);
export type Prompt = Static<typeof PromptSchema>;

const TurnOutputSchema = Type.Optional({ ...OutputSchemaSchema, description: "This turn's output schema (instead of the session's)" });
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
    attachments: Type.Array(AttachmentSummarySchema, { description: "The prompt's images and documents (their content is not repeated here)" }),
    structured_output: Type.Unknown({ description: 'With an output schema: the answer, validated against it (null otherwise)' }),
  },
  { $id: 'Turn' },
);
export type Turn = Static<typeof TurnSchema>;

/** What a turn sent to a busy session does. */
export const IfBusySchema = Type.Union([Type.Literal('reject'), Type.Literal('queue'), Type.Literal('interrupt')]);
export type IfBusy = Static<typeof IfBusySchema>;

export const StartTurnBodySchema = Type.Object(
  {
    prompt: PromptSchema,
    output_schema: TurnOutputSchema,
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

export const SessionEventsQuerySchema = Type.Object(
  {
    ...EventsQuerySchema.properties,
    tail: Type.Optional(
      Type.Boolean({
        description:
          'Without Last-Event-ID or ?after=: replay only the running turn (from when it started), or nothing when none runs, then follow live. ' +
          'For a client that reads the conversation from /messages and wants what happens next, not the whole log',
      }),
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
    order: Type.Union([Type.Literal('asc'), Type.Literal('desc')], { default: 'asc', description: 'asc: oldest first; desc: newest first' }),
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
    query: { ...PromptSchema, description: 'The prompt: text, or content blocks' },
    output_schema: TurnOutputSchema,
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
  structured_output: Type.Unknown({ description: 'With an output schema: the answer, validated against it (null otherwise)' }),
});
