/**
 * @module webhooks/schemas
 * The Webhook and Delivery resources and the bodies of the webhook routes. The schema is the type.
 */
import { Type, type Static } from 'typebox';

export const WEBHOOK_EVENTS = ['turn.finished', 'permission.requested', 'session.created', 'session.deleted'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
const EventSchema = Type.Union(
  [Type.Literal('turn.finished'), Type.Literal('permission.requested'), Type.Literal('session.created'), Type.Literal('session.deleted')],
  {
    description:
      'turn.finished: a turn ended, in any final status (data: the Turn); permission.requested: a tool call waits for a person (data: the request); ' +
      'session.created / session.deleted (data: the Session)',
  },
);

export const WebhookSchema = Type.Object(
  {
    webhook_id: Type.String({ format: 'uuid' }),
    user_id: Type.String({ description: 'The owner: whose events it is told of' }),
    all_users: Type.Boolean({ description: "Told of every user's events (made by an admin)" }),
    url: Type.String(),
    events: Type.Array(EventSchema),
    description: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Webhook', description: 'An endpoint told of events. Its signing secret is shown once, when it is made' },
);
export type Webhook = Static<typeof WebhookSchema>;

export const CreateWebhookBodySchema = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 2048,
      description: 'http(s) URL; loopback, private and link-local addresses only with WEBHOOK_ALLOW_PRIVATE=1',
    }),
    events: Type.Array(EventSchema, { minItems: 1, maxItems: WEBHOOK_EVENTS.length * 4 }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    all_users: Type.Optional(Type.Boolean({ description: "Admins only: told of every user's events" })),
  },
  { additionalProperties: false },
);
export type CreateWebhookBody = Static<typeof CreateWebhookBodySchema>;

export const CreatedWebhookSchema = Type.Intersect([
  Type.Ref('Webhook'),
  Type.Object({
    secret: Type.String({
      description:
        'The signing secret (whsec_ + base64 key), shown only now: verify webhook-signature = v1,base64(HMAC-SHA256(key, id.timestamp.body)) (Standard Webhooks)',
    }),
  }),
]);

export const WebhookParamsSchema = Type.Object({ webhook_id: Type.String({ format: 'uuid' }) });

export const DeliverySchema = Type.Object({
  delivery_id: Type.String({ format: 'uuid', description: 'Also the webhook-id header: the same on every retry (drop repeats by it)' }),
  event_type: EventSchema,
  status: Type.Union([Type.Literal('pending'), Type.Literal('delivered'), Type.Literal('failed')], {
    description: 'pending: not answered 2xx yet (retried); delivered; failed: given up after retrying for a day',
  }),
  attempts: Type.Integer({ minimum: 0 }),
  next_attempt_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  last_status_code: Type.Union([Type.Integer(), Type.Null()], { description: "The endpoint's last HTTP status (null: no answer)" }),
  last_error: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String({ format: 'date-time' }),
  finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
export type Delivery = Static<typeof DeliverySchema>;

export const DeliveriesQuerySchema = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'next_cursor of the previous page' })),
  },
  { additionalProperties: false },
);
