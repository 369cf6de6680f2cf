/**
 * @module webhooks/deliver
 * One attempt to deliver one message, the Standard Webhooks way: a POST of the JSON body with
 * `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature` (`v1,` + base64 of
 * HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's bytes after `whsec_`). The address
 * is checked when the connection is made (the host is resolved by our own lookup, which refuses
 * loopback, private and link-local addresses unless allowed): a name that resolved to a public
 * address when the endpoint was made and to a private one now (DNS rebinding) is refused.
 * Redirects are not followed.
 */
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import net from 'node:net';
import { createHmac, randomBytes } from 'node:crypto';
import { isClosedAddress } from '../network.js';

/** A new signing secret. */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/** The `webhook-signature` header's value for a message. */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** Most of an answer read (then dropped): a receiver cannot make the server hold its body. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** A lookup that refuses addresses no webhook may reach (unless `allowPrivate`). */
function guardedLookup(allowPrivate: boolean): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses;
      const open = allowPrivate ? list : list.filter((a) => !isClosedAddress(a.address));
      if (open.length === 0) {
        const e = Object.assign(new Error(`${hostname} resolves to a loopback, private or link-local address (WEBHOOK_ALLOW_PRIVATE is off)`), {
          code: 'EADDRNOTALLOWED',
        });
        return callback(e, '', 0);
      }
      if ((options as { all?: boolean }).all) return callback(null, open, 0);
      callback(null, open[0]!.address, open[0]!.family);
    });
  };
}

/** Sends one message; never throws. */
export function attempt(
  d: { url: string; secret: string; id: string; body: string },
  o: { allowPrivate: boolean; timeoutMs: number; userAgent: string },
): Promise<AttemptResult> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(d.url);
    } catch {
      return resolve({ ok: false, status: null, error: 'not a URL' });
    }
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // A literal address gets no lookup: it is checked here.
    if (net.isIP(host) && !o.allowPrivate && isClosedAddress(host)) {
      return resolve({ ok: false, status: null, error: `${host} is a loopback, private or link-local address (WEBHOOK_ALLOW_PRIVATE is off)` });
    }
    const timestamp = Math.floor(Date.now() / 1000);
    const lib = url.protocol === 'https:' ? https : http;
    const req = lib.request(
      url,
      {
        method: 'POST',
        lookup: guardedLookup(o.allowPrivate),
        timeout: o.timeoutMs,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(d.body),
          'user-agent': o.userAgent,
          'webhook-id': d.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(d.secret, d.id, timestamp, d.body),
        },
      },
      (res) => {
        let read = 0;
        let enough = false;
        res.on('data', (c: Buffer) => {
          read += c.length;
          if (read > MAX_ANSWER_BYTES) {
            enough = true;
            res.destroy();
          }
        });
        res.on('error', (err) => {
          if (!enough) resolve({ ok: false, status: res.statusCode ?? null, error: err.message });
        });
        const done = () => {
          if (!res.complete && !enough) return resolve({ ok: false, status: res.statusCode ?? null, error: 'the answer was cut off' });
          const status = res.statusCode ?? 0;
          resolve({ ok: status >= 200 && status < 300, status, error: status >= 200 && status < 300 ? null : `answered ${status}` });
        };
        res.on('end', done);
        res.on('close', done);
      },
    );
    // A deadline for the whole attempt (the socket's timeout is for silence only: a receiver that drips
    // a byte at a time would hold it for days).
    const deadline = setTimeout(() => req.destroy(new Error(`no complete answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${o.timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, status: null, error: err.message || err.code || 'connection failed' }));
    req.on('close', () => clearTimeout(deadline));
    req.end(d.body);
  });
}
