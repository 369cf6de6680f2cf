/**
 * @module plugins/shutdown
 * A graceful close: from the moment the server starts closing, requests other than `/health`
 * get this server's own 503 (with Retry-After) and no kept-alive connection holds the listener
 * open; `stop` then runs (running turns get their grace period).
 */
import { AppError } from '../errors.js';
import type { App } from '../types.js';

/** Registers the hooks; returns whether the server is closing. */
export function registerShutdown(app: App, stop: () => Promise<void>): () => boolean {
  let closing = false;
  app.addHook('onRequest', async (req) => {
    if (closing && req.routeOptions.url !== '/health') throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });
  app.addHook('preClose', async () => {
    closing = true;
    await stop();
  });
  return () => closing;
}
