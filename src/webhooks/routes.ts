/**
 * @module webhooks/routes
 * HTTP routes of the webhook resource. Each route declares its schemas; handlers only call the service.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { commonErrors } from '../errors.js';
import type { WebhookService } from './service.js';
import { CreatedWebhookSchema, CreateWebhookBodySchema, DeliveriesQuerySchema, DeliverySchema, WebhookParamsSchema } from './schemas.js';

const tags = ['webhooks'];
const WebhookRef = Type.Ref('Webhook');
const oneWebhookErrors = { ...commonErrors, 404: Type.Ref('Error') };

export async function webhookRoutes(app: App, opts: { webhooks: WebhookService }) {
  const svc = opts.webhooks;

  app.post('/v1/webhooks', {
    schema: {
      tags,
      operationId: 'createWebhook',
      summary: "Register an endpoint for events (the caller's; an admin's with all_users: every user's). The answer holds the signing secret, once",
      body: CreateWebhookBodySchema,
      response: { 201: CreatedWebhookSchema, ...commonErrors },
    },
    handler: async (req, reply) => reply.code(201).send(await svc.create(req.caller, req.body)),
  });

  app.get('/v1/webhooks', {
    schema: {
      tags,
      operationId: 'listWebhooks',
      summary: "The caller's webhooks (an admin: everyone's), oldest first",
      response: { 200: Type.Object({ webhooks: Type.Array(WebhookRef) }), ...commonErrors },
    },
    handler: async (req) => svc.list(req.caller),
  });

  app.get('/v1/webhooks/:webhook_id', {
    schema: { tags, operationId: 'getWebhook', summary: 'One webhook', params: WebhookParamsSchema, response: { 200: WebhookRef, ...oneWebhookErrors } },
    handler: async (req) => svc.get(req.caller, req.params.webhook_id),
  });

  app.delete('/v1/webhooks/:webhook_id', {
    schema: {
      tags,
      operationId: 'deleteWebhook',
      summary: 'Delete a webhook and its undelivered messages',
      params: WebhookParamsSchema,
      response: { 200: WebhookRef, ...oneWebhookErrors },
    },
    handler: async (req) => svc.remove(req.caller, req.params.webhook_id),
  });

  app.get('/v1/webhooks/:webhook_id/deliveries', {
    schema: {
      tags,
      operationId: 'listWebhookDeliveries',
      summary: "The webhook's messages, newest first: status, attempts, the endpoint's last answer",
      params: WebhookParamsSchema,
      querystring: DeliveriesQuerySchema,
      response: { 200: Type.Object({ deliveries: Type.Array(DeliverySchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...oneWebhookErrors },
    },
    handler: async (req) => svc.deliveries(req.caller, req.params.webhook_id, req.query),
  });
}
