/**
 * @module plugins/request-id
 * Every request has an id, echoed in `X-Request-Id` and in the logs. A client's own id is kept
 * when it is a plain token; anything longer or stranger is replaced by a new one.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { App } from '../types.js';

/** A client's request id that is kept as it is: a plain token of at most 128 characters. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify's options for request ids. */
export const requestIdOptions = {
  requestIdHeader: false as const,
  genReqId: (req: IncomingMessage): string => {
    const given = req.headers['x-request-id'];
    return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
  },
};

export function registerRequestId(app: App): void {
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    done(null, payload);
  });
}
