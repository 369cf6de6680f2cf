/**
 * @module plugins/web-page
 * The web page: the built Preact assets of `ui/` (dist/ui), served at `/` by @fastify/static.
 * Only files that exist are routed (no wildcard), so unknown paths keep the JSON 404.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fp from 'fastify-plugin';
import fastifyStatic from '@fastify/static';
import { errorBody } from './errors.js';

export const PAGE_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; " +
  "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

export const UI_DIR = fileURLToPath(new URL('../../dist/ui', import.meta.url));

export default fp(async (app) => {
  if (!fs.existsSync(`${UI_DIR}/index.html`)) {
    app.log.warn(`the web page is not built (${UI_DIR}); run "npm run build"`);
    app.get('/', { schema: { hide: true } }, async (req, reply) =>
      reply.code(503).send(errorBody('UNAVAILABLE', 'the web page is not built: run "npm run build"', req.id)),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: UI_DIR,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    schemaHide: true,
    // The page shows text written by a model (untrusted): besides its sanitizing, the browser runs only the
    // page's own scripts, loads images only from the page (data: and blob: for attachments) and talks to this server alone.
    setHeaders: (res) => {
      res.header('content-security-policy', PAGE_CSP);
      res.header('x-content-type-options', 'nosniff');
      res.header('referrer-policy', 'no-referrer');
    },
  });
});
