/**
 * @module auth/caller
 * Resolves who is calling. This version runs single-user: every request acts as `local`,
 * the operator of a loopback-bound server, with admin rights. API keys come with the
 * security issue; routes already receive a Caller, so they will not change.
 */
import type { FastifyRequest } from 'fastify';
import type { Caller } from '../sessions/access.js';

export const LOCAL_USER = 'local';

export function resolveCaller(_req: FastifyRequest): Caller {
  return { userId: LOCAL_USER, admin: true };
}
