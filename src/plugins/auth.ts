/**
 * @module plugins/auth
 * Resolves the caller of every request before anything else runs (API key, or the local user
 * in single-user mode); public routes (liveness, docs, metrics, the page) need none.
 */
import { isPublicRoute, type CallerResolver } from '../auth/caller.js';
import type { App } from '../types.js';

export function registerAuth(app: App, callers: CallerResolver): void {
  app.decorateRequest('caller', null as never);
  app.addHook('onRequest', async (req) => {
    req.caller = isPublicRoute(req.routeOptions.url) ? { userId: '', admin: false } : await callers.resolve(req);
  });
}
