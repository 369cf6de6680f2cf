/**
 * @module auth/caller
 * Resolves who is calling. With API keys (API_KEYS or the keys command) every request needs
 * `Authorization: Bearer <key>`; with none, a server bound to loopback runs single-user as
 * `local` (an admin: the operator on this machine). A server bound elsewhere with no keys does
 * not start (the services refuse it), and never becomes open later: single-user mode is only
 * ever granted on loopback.
 */
import type { FastifyRequest } from 'fastify';
import type { Caller } from './access.js';
import type { KeyAuth } from './keys.js';

export const LOCAL_USER = 'local';

/**
 * Whether a request needs no key, decided on the route the router matched (never on the raw
 * URL, which may be percent-encoded: `/%761/sessions` reaches the `/v1/sessions` route). Only
 * routes outside `/v1/` are public: liveness, documentation, metrics and the web page. A request
 * that matched no route needs a key too (it gets 401 rather than a hint of what exists).
 */
export function isPublicRoute(routeUrl: string | undefined): boolean {
  return routeUrl !== undefined && !routeUrl.startsWith('/v1/') && routeUrl !== '/v1';
}

export interface CallerResolver {
  resolve(req: FastifyRequest): Promise<Caller>;
  /** True when no key exists and the server is on loopback. */
  singleUser(): Promise<boolean>;
}

export function createCallerResolver(opts: { auth: KeyAuth; loopback: boolean }): CallerResolver {
  // Whether keys exist is read at most once a second (keys made with the command show up).
  let cached: { at: number; any: boolean } | null = null;
  const anyKeys = async () => {
    if (!cached || Date.now() - cached.at > 1000) cached = { at: Date.now(), any: await opts.auth.anyKeys() };
    return cached.any;
  };
  return {
    async singleUser() {
      return opts.loopback && !(await anyKeys());
    },
    async resolve(req) {
      if (opts.loopback && !(await anyKeys())) return { userId: LOCAL_USER, admin: true };
      return opts.auth.authenticate(req.headers.authorization);
    },
  };
}
