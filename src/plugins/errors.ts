/**
 * @module plugins/errors
 * Every error a client gets has one shape, built here: `{error: {code, message, request_id,
 * details?}}`, with the status of its code (errors.ts). Our own errors, Fastify's (validation, body
 * too large, a route that does not exist, a malformed URL) and a lost database connection all
 * end here.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.js';
import { isConnectionLoss } from '../storage/db.js';
import type { App } from '../types.js';

/** The JSON body of every error. */
export function errorBody(code: ErrorCode, message: string, requestId: string, details?: unknown) {
  return { error: { code, message, request_id: requestId, ...(details ? { details } : {}) } };
}

/** Maps Fastify's own client errors (bad JSON, too large, a body that is not JSON: 400) onto our codes. */
function codeForFastifyError(err: FastifyError): ErrorCode {
  if (err.validation) return 'INVALID_REQUEST';
  switch (err.statusCode) {
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 429:
      return 'RATE_LIMITED';
    case 404:
      return 'NOT_FOUND';
    case 503:
      return 'UNAVAILABLE';
    default:
      return err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? 'INVALID_REQUEST' : 'INTERNAL';
  }
}

/** For Fastify's `frameworkErrors`: errors the router raises before any route runs. */
export function frameworkError(err: FastifyError, req: FastifyRequest, res: FastifyReply): void {
  void res.code(400).send(errorBody('INVALID_REQUEST', `invalid request URL: ${err.message}`, req.id));
}

/** The error and not-found handlers of the app. */
export function registerErrorHandlers(app: App): void {
  app.setErrorHandler((err: FastifyError | AppError, req, reply) => {
    let code: ErrorCode;
    let message = err.message;
    if (err instanceof AppError) {
      code = err.code;
      if (err.retryAfter !== undefined) reply.header('retry-after', String(err.retryAfter));
    } else if (isConnectionLoss(err)) {
      code = 'UNAVAILABLE';
      message = 'the database connection was lost; retry shortly';
      reply.header('retry-after', '1');
    } else {
      code = codeForFastifyError(err);
      if (err.validation) message = `invalid request: ${err.message}`;
      // The JSON parser's message quotes the body around the mistake, which may be a secret: only where it is.
      else if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
        const at = /position (\d+)/.exec(err.message)?.[1];
        message = `the body is not valid JSON${at ? ` (at character ${at})` : ''}`;
      }
    }
    const status = ERROR_STATUS[code];
    if (status >= 500) req.log.error({ err }, 'request failed');
    else req.log.info({ code, message }, 'client error');
    if (code === 'INTERNAL') message = 'internal error; the request id identifies it in the server log';
    return reply.code(status).send(errorBody(code, message, req.id, err instanceof AppError ? err.details : undefined));
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, req.id)));
}
