/**
 * @module metrics/routes
 * `GET /metrics` in the Prometheus text format.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import type { Metrics } from './metrics.js';

export async function metricsRoutes(app: App, opts: { metrics: Metrics }) {
  app.get('/metrics', {
    schema: {
      tags: ['system'],
      operationId: 'metrics',
      security: [],
      summary: 'Prometheus metrics: turns by status, durations, time to first event, running, queued, warm and spare processes, SSE subscribers',
      response: {
        200: { description: 'Prometheus text format', content: { 'text/plain': { schema: { type: 'string' } } } },
        400: Type.Ref('Error'),
        500: Type.Ref('Error'),
      },
    },
    handler: async (_req, reply) => {
      reply.header('content-type', opts.metrics.registry.contentType);
      return opts.metrics.registry.metrics();
    },
  });
}
