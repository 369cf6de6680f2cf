/**
 * @module plugins/swagger
 * The OpenAPI document (`/openapi.json`), generated from the route schemas, and its
 * browsable page (`/docs`).
 */
import fp from 'fastify-plugin';
import { Type } from 'typebox';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { ERROR_CODES, TURN_ERROR_CODES } from '../errors.js';

type ObjectSchema = { properties?: Record<string, { default?: unknown }>; required?: string[] };

/**
 * The schema as a client sees it: a field with a default may be left out (validation fills it
 * in), so it is not listed as required. The validation schema itself is left as it is.
 */
export function optionalDefaults<T>(schema: T): T {
  const o = schema as ObjectSchema | undefined;
  if (!o || !Array.isArray(o.required) || !o.properties) return schema;
  const props = o.properties;
  const required = o.required.filter((k) => props[k]?.default === undefined);
  return required.length === o.required.length ? schema : ({ ...o, required } as T);
}

/** Any request may be refused before its route runs (a NUL in the URL, headers too large): the error body. */
const ERROR_RESPONSE = {
  description: 'The request was refused before it reached the route (a malformed URL)',
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
};

export default fp(async (app, opts: { version: string }) => {
  await app.register(swagger, {
    transform: ({ schema, url }) => {
      if (!schema) return { schema, url };
      const s = schema as Record<string, unknown>;
      return { schema: { ...s, querystring: optionalDefaults(s.querystring), body: optionalDefaults(s.body) }, url };
    },
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'claude-session-server',
        version: opts.version,
        license: { name: 'MIT', identifier: 'MIT' },
        description:
          'Long-lived Claude Code sessions over HTTP. Every error is `{"error": {"code", "message", "request_id"}}`; ' +
          `the codes form one closed list: ${ERROR_CODES.join(', ')}. A turn that ends in failure carries one of them or one of ` +
          `${TURN_ERROR_CODES.join(', ')} in \`Turn.error.code\` and the SSE \`error\` event.`,
      },
      // Relative: the server that serves this document (any host, port or path prefix a proxy adds).
      servers: [{ url: '/', description: 'The server that serves this document' }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      // Pages served by plugins, listed here because their routes carry no schema.
      paths: {
        '/docs': {
          get: {
            tags: ['system'],
            operationId: 'docs',
            summary: 'This document as a browsable page',
            security: [],
            responses: { 200: { description: 'HTML' }, 400: ERROR_RESPONSE },
          },
        },
        '/': {
          get: {
            tags: ['system'],
            operationId: 'webPage',
            summary: 'The web page',
            security: [],
            responses: {
              200: { description: 'HTML' },
              400: ERROR_RESPONSE,
              503: {
                description: 'The page is not built (`npm run build`)',
                content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
              },
            },
          },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'sessions', description: 'Session metadata, transcripts, fork and import' },
        { name: 'turns', description: 'Running prompts in a session' },
        { name: 'permissions', description: 'Tool approvals by people' },
        { name: 'files', description: "The files of a session's folder: list, read, write, delete, archive" },
        { name: 'agents', description: 'Versioned configurations sessions start from: instructions, tools, MCP servers, limits, output schema' },
        { name: 'webhooks', description: 'Endpoints told of events (turn.finished, permission.requested, session.created, session.deleted), signed, retried' },
        { name: 'system', description: 'Health and documentation' },
      ],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get(
    '/openapi.json',
    {
      schema: {
        tags: ['system'],
        operationId: 'openapi',
        summary: 'This OpenAPI document',
        security: [],
        response: {
          200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object', additionalProperties: true } } } },
          400: Type.Ref('Error'),
          500: Type.Ref('Error'),
        },
      },
    },
    async (_req, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(app.swagger())),
  );
});
