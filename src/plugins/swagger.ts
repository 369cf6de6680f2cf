/**
 * @module plugins/swagger
 * The OpenAPI document (`/openapi.json`), generated from the route schemas, and its
 * browsable page (`/docs`).
 */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ERROR_CODES } from '../errors.js';

export default fp(async (app, opts: { version: string }) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'claude-session-server',
        version: opts.version,
        description:
          'Long-lived Claude Code sessions over HTTP. Every error is `{"error": {"code", "message", "request_id"}}`; ' +
          `the codes form one closed list: ${ERROR_CODES.join(', ')}.`,
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
      tags: [
        { name: 'sessions', description: 'Session metadata, transcripts, fork and import' },
        { name: 'turns', description: 'Running prompts in a session' },
        { name: 'permissions', description: 'Tool approvals by people' },
        { name: 'system', description: 'Health and documentation' },
      ],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
});
