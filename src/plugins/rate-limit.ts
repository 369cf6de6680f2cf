/**
 * @module plugins/rate-limit
 * Requests per minute per key (per user; per address before a caller is known), with
 * `@fastify/rate-limit`, checked once the caller is resolved. Public routes are not counted.
 */
import rateLimit from '@fastify/rate-limit';
import { AppError } from '../errors.js';
import type { App } from '../types.js';

export async function registerRateLimit(app: App, o: { perMinute: number; isPublic: (url: string | undefined) => boolean }): Promise<void> {
  await app.register(rateLimit, {
    hook: 'preHandler',
    max: o.perMinute,
    timeWindow: 60_000,
    keyGenerator: (req) => (req.caller?.userId ? `user:${req.caller.userId}` : `ip:${req.ip}`),
    allowList: (req) => o.isPublic(req.routeOptions.url),
    errorResponseBuilder: (_req, ctx) => {
      const err = new AppError('RATE_LIMITED', `more than ${ctx.max} requests a minute (RATE_LIMIT_PER_MINUTE); retry in ${ctx.after}`, {
        retryAfter: Math.ceil(ctx.ttl / 1000),
      });
      (err as unknown as { statusCode: number }).statusCode = 429;
      return err;
    },
  });
}
