/**
 * @module plugins/request-guards
 * What every request goes through before a route sees it: ids in capitals made lowercase, text with
 * a NUL refused, an empty body of a route whose body is all optional read as {}, and requests Node
 * cannot parse answered with the same JSON error shape as everything else.
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { AppError, type ErrorCode } from '../errors.js';
import type { App } from '../types.js';
import { errorBody } from './errors.js';

const UUID_ANY_CASE = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

/** Lowercases the UUIDs among an object's `..._id` strings (path parameters, a body's own fields). */
export function lowerUuids(o: unknown): void {
  if (!o || typeof o !== 'object' || Array.isArray(o)) return;
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    const v = r[k];
    if (k.endsWith('_id') && typeof v === 'string' && /[A-F]/.test(v) && UUID_ANY_CASE.test(v)) r[k] = v.toLowerCase();
  }
}

/**
 * Where a client's value holds a NUL character (U+0000), as a field path (`body.session_name`,
 * `query.q`), or null. PostgreSQL's text refuses NUL; one rule for both dialects: it is refused.
 */
export function nulAt(o: unknown, at: string, depth = 0): string | null {
  if (typeof o === 'string') return o.includes('\u0000') ? at : null;
  if (!o || typeof o !== 'object' || depth > 32) return null;
  // A raw body (a stream, a Buffer) is bytes, not text fields: its object graph is not walked.
  if (typeof (o as { pipe?: unknown }).pipe === 'function' || ArrayBuffer.isView(o)) return null;
  if (Array.isArray(o)) {
    for (let i = 0; i < o.length; i++) {
      const w = nulAt(o[i], `${at}[${i}]`, depth + 1);
      if (w) return w;
    }
    return null;
  }
  for (const [k, v] of Object.entries(o)) {
    const w = k.includes('\u0000') ? `${at} (a key)` : nulAt(v, `${at}.${k}`, depth + 1);
    if (w) return w;
  }
  return null;
}

/** Fastify's `clientErrorHandler`: a malformed request (400), headers too large (431), a request not received in time (408). */
export function jsonClientError(requestTimeoutMs: number) {
  // A request Node cannot parse (a malformed request line, headers too large, one not received in
  // time) gets the same JSON error shape as everything else, not Fastify's default body.
  return (err: NodeJS.ErrnoException, socket: Duplex): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, code, message]: [number, ErrorCode, string] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'REQUEST_TIMEOUT', `the request was not received whole within ${requestTimeoutMs} ms (REQUEST_TIMEOUT_MS)`]
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? [431, 'HEADERS_TOO_LARGE', 'the request headers are too large']
          : [400, 'INVALID_REQUEST', `malformed HTTP request (${err.code ?? 'parse error'})`];
    const body = JSON.stringify(errorBody(code, message, randomUUID()));
    if (socket.writable)
      socket.write(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
      );
    socket.destroy(err);
  };
}

/** The checks every request's parsed parts go through before validation. */
export function registerRequestGuards(app: App): void {
  // (The hook needs no await: with a callback Fastify goes on in the same step.)
  app.addHook('preValidation', (req, _reply, done) => {
    // Routes whose body is all optional accept an empty request body as {}.
    if (req.body === undefined && req.routeOptions.schema?.body) req.body = {};
    // Ids are the SDK's lowercase UUIDs; one sent in capitals (as Swift's UUID prints them) names the same.
    lowerUuids(req.params);
    lowerUuids(req.body);
    const nul = nulAt(req.body, 'body') ?? nulAt(req.query, 'query') ?? nulAt(req.params, 'params');
    if (nul) return done(new AppError('INVALID_REQUEST', `${nul} contains a NUL character (U+0000), which this server does not accept in any text`));
    done();
  });
}
