/**
 * A typed client for claude-session-server. Types come from the server's OpenAPI document
 * (`generated.ts`, made at build time); this layer adds what generators do badly: event streams as
 * async iterators that resume with Last-Event-ID after a dropped connection, tool approvals as an
 * iterator, and one error class carrying `code` and `requestId`.
 *
 *   const client = new Client({ baseUrl: 'http://127.0.0.1:8000', apiKey });
 *   const s = await client.sessions.create({ prompt: 'Remember: my favorite color is blue' });
 *   for await (const e of client.turns.stream(s.session_id, { prompt: 'What is my favorite color?' })) console.log(e.event);
 */
import type {
  CreateSessionBody,
  CreateSessionResponse,
  CreateWebhookBody,
  CreateWebhookResponse,
  DecidePermissionRequestBody,
  ErrorBody,
  ForkSessionBody,
  ListSessionsQuery,
  ListSessionsResponse,
  ListTurnsQuery,
  ListTurnsResponse,
  ListWebhookDeliveriesResponse,
  ListWebhooksResponse,
  ListPermissionRequestsResponse,
  GetSessionMessagesResponse,
  UpdateSessionBody,
  PermissionRequest,
  QueryBody,
  QueryResponse,
  Session,
  StartTurnBody,
  Turn,
  Webhook,
} from './generated.js';

export type * from './generated.js';

/** Every error the server answers (and a stream that could not be resumed: status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: ErrorBody['error']['code'] | 'STREAM_LOST' | 'HTTP_ERROR';
  readonly requestId: string | null;
  readonly details: unknown;
  /** Seconds, from Retry-After (429, 503). */
  readonly retryAfter: number | null;
  constructor(status: number, code: ApiError['code'], message: string, requestId: string | null = null, details?: unknown, retryAfter: number | null = null) {
    super(`${status} ${code}: ${message}`);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

/** The events of a turn stream, typed by their name. */
export type TurnEvent =
  | { id: number | null; event: 'turn' | 'done'; data: Turn }
  | { id: number | null; event: 'permission_request'; data: PermissionRequest }
  | { id: number | null; event: 'permission_resolved'; data: { request_id: string; behavior: 'allow' | 'deny'; by: string } }
  | { id: number | null; event: 'error'; data: { code: string; message: string } }
  | { id: number | null; event: 'files_changed'; data: { turn_id: string; files: Array<{ path: string; kind: string }> } }
  | { id: number | null; event: 'message'; data: Record<string, unknown> };

export interface ClientOptions {
  baseUrl?: string;
  /** Sent as `Authorization: Bearer`; leave out on a single-user server. */
  apiKey?: string;
  /** How long (ms) a dropped stream is tried again (a server restarting, a proxy answering 502/503): 60 s. */
  reconnectForMs?: number;
  fetch?: typeof fetch;
}

type Json = Record<string, unknown>;

export class Client {
  readonly baseUrl: string;
  private readonly apiKey: string | undefined;
  private readonly reconnectForMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(o: ClientOptions = {}) {
    this.baseUrl = (o.baseUrl ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
    this.apiKey = o.apiKey;
    this.reconnectForMs = o.reconnectForMs ?? 60_000;
    // Called as a plain function (a browser's fetch refuses another `this`).
    this.fetchImpl = o.fetch ?? ((input, init) => fetch(input, init));
  }

  readonly sessions = {
    /** With `prompt`, the first turn runs (waited for on its event stream unless `wait: false`): see `.turn`. */
    create: async (body: CreateSessionBody = {}, o: { wait?: boolean } = {}): Promise<CreateSessionResponse> => {
      const s = await this.json<CreateSessionResponse>('POST', '/v1/sessions', body, { wait: false });
      if (o.wait === false || !s.turn || !['queued', 'running'].includes(s.turn.status)) return s;
      const turn = await this.turns.wait(s.session_id, s.turn.turn_id);
      return { ...(await this.sessions.get(s.session_id)), turn };
    },
    list: (q: Partial<ListSessionsQuery> = {}) => this.json<ListSessionsResponse>('GET', '/v1/sessions', undefined, q),
    /** Every session matching the filters, page after page. */
    all: async function* (this: Client, q: Partial<ListSessionsQuery> = {}): AsyncGenerator<Session> {
      let cursor: string | undefined;
      do {
        const page = await this.sessions.list({ ...q, ...(cursor ? { cursor } : {}) });
        yield* page.sessions;
        cursor = page.next_cursor ?? undefined;
      } while (cursor);
    }.bind(this),
    get: (id: string) => this.json<Session>('GET', `/v1/sessions/${seg(id)}`),
    update: (id: string, body: UpdateSessionBody) => this.json<Session>('PATCH', `/v1/sessions/${seg(id)}`, body),
    delete: (id: string, o: { purge?: boolean } = {}) =>
      this.json<Session>('DELETE', `/v1/sessions/${seg(id)}`, undefined, o.purge ? { purge: true } : undefined),
    fork: (id: string, body: ForkSessionBody = {}) => this.json<Session>('POST', `/v1/sessions/${seg(id)}/fork`, body),
    messages: (id: string, q: { limit?: number; offset?: number } = {}) =>
      this.json<GetSessionMessagesResponse>('GET', `/v1/sessions/${seg(id)}/messages`, undefined, q),
    /** Every event of every turn of the session after `after`, then live (endless: break to stop). */
    events: (id: string, o: { after?: number } = {}) => this.follow(`/v1/sessions/${seg(id)}/events`, o.after ?? null, false),
  };

  readonly turns = {
    /** Runs a prompt and waits for the finished Turn (on its event stream: a turn may outlast any HTTP timeout). */
    run: async (sessionId: string, body: StartTurnBody): Promise<Turn> => {
      const t = await this.turns.start(sessionId, body);
      return this.turns.wait(sessionId, t.turn_id);
    },
    /** Starts a prompt: the queued or running Turn, at once. */
    start: (sessionId: string, body: StartTurnBody) => this.json<Turn>('POST', `/v1/sessions/${seg(sessionId)}/turns`, body, { wait: false }),
    /** Runs a prompt and yields its events until `done`; a dropped connection is resumed where it broke. */
    stream: (sessionId: string, body: StartTurnBody) => this.streamTurn(sessionId, body),
    /** A turn's events after `after` (all when left out), then live until it ends; resumed after a dropped connection. */
    events: (sessionId: string, turnId: string, o: { after?: number } = {}) =>
      this.follow(`/v1/sessions/${seg(sessionId)}/turns/${seg(turnId)}/events`, o.after ?? null, true),
    get: (sessionId: string, turnId: string) => this.json<Turn>('GET', `/v1/sessions/${seg(sessionId)}/turns/${seg(turnId)}`),
    list: (sessionId: string, q: Partial<ListTurnsQuery> = {}) => this.json<ListTurnsResponse>('GET', `/v1/sessions/${seg(sessionId)}/turns`, undefined, q),
    /** Cancels a queued turn (409 TURN_NOT_CANCELLABLE once it runs: interrupt it). */
    cancel: (sessionId: string, turnId: string) => this.json<Turn>('DELETE', `/v1/sessions/${seg(sessionId)}/turns/${seg(turnId)}`),
    /** Stops the running turn (it ends interrupted); 409 NO_RUNNING_TURN when none runs. */
    interrupt: (sessionId: string) => this.json<Json>('POST', `/v1/sessions/${seg(sessionId)}/interrupt`),
    /** The turn once it has ended (from its event stream, not polled). */
    wait: async (sessionId: string, turnId: string): Promise<Turn> => {
      for await (const e of this.turns.events(sessionId, turnId)) if (e.event === 'done') return e.data;
      return this.turns.get(sessionId, turnId);
    },
  };

  readonly permissions = {
    pending: async (sessionId: string) => (await this.json<ListPermissionRequestsResponse>('GET', `/v1/sessions/${seg(sessionId)}/permissions`)).requests,
    decide: (sessionId: string, requestId: string, body: DecidePermissionRequestBody) =>
      this.json<PermissionRequest>('POST', `/v1/sessions/${seg(sessionId)}/permissions/${seg(requestId)}`, body),
    approve: (sessionId: string, requestId: string, o: { scope?: 'once' | 'session' } = {}) =>
      this.permissions.decide(sessionId, requestId, { behavior: 'allow', ...o }),
    deny: (sessionId: string, requestId: string, message?: string) =>
      this.permissions.decide(sessionId, requestId, { behavior: 'deny', ...(message ? { message } : {}) }),
  };

  readonly webhooks = {
    /** The answer's `secret` is shown only now: keep it to verify deliveries. */
    create: (body: CreateWebhookBody) => this.json<CreateWebhookResponse>('POST', '/v1/webhooks', body),
    list: async () => (await this.json<ListWebhooksResponse>('GET', '/v1/webhooks')).webhooks,
    delete: (id: string) => this.json<Webhook>('DELETE', `/v1/webhooks/${seg(id)}`),
    deliveries: (id: string, q: { limit?: number; cursor?: string } = {}) =>
      this.json<ListWebhookDeliveriesResponse>('GET', `/v1/webhooks/${seg(id)}/deliveries`, undefined, q),
  };

  /** The original contract: a turn in `session_id` (a new session without it), waited for. */
  async query(body: QueryBody): Promise<QueryResponse> {
    const r = await this.json<QueryResponse>('POST', '/v1/query', body, { wait: false });
    if (r.status !== 'queued' && r.status !== 'running') return r;
    const t = await this.turns.wait(r.session_id, r.turn_id);
    return {
      ...r,
      status: t.status,
      result: t.result,
      error: t.error,
      duration_ms: t.duration_ms,
      cost_usd: t.cost_usd,
      usage: t.usage,
      structured_output: t.structured_output,
    };
  }

  /** Each tool call of the session waiting for a person, as it is asked (those already waiting first). */
  async *permissionRequests(sessionId: string): AsyncGenerator<PermissionRequest> {
    const seen = new Set<string>();
    for (const r of await this.permissions.pending(sessionId)) {
      seen.add(r.request_id);
      yield r;
    }
    for await (const e of this.sessions.events(sessionId)) {
      if (e.event !== 'permission_request' || seen.has(e.data.request_id)) continue;
      seen.add(e.data.request_id);
      // The log replays old requests too: only one still waiting is yielded.
      if ((await this.permissions.pending(sessionId)).some((r) => r.request_id === e.data.request_id)) yield e.data;
    }
  }

  // -- plumbing ----------------------------------------------------------------------------------

  private url(path: string, query?: object): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== null) q.set(k, String(v));
    const s = q.toString();
    return `${this.baseUrl}${path}${s ? `?${s}` : ''}`;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { accept: 'application/json', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}), ...extra };
  }

  private async send(method: string, path: string, body?: unknown, query?: object, headers?: Record<string, string>): Promise<Response> {
    const res = await this.fetchImpl(this.url(path, query), {
      method,
      headers: this.headers(body === undefined ? headers : { 'content-type': 'application/json', ...headers }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!res.ok) throw await toError(res);
    return res;
  }

  private async json<T>(method: string, path: string, body?: unknown, query?: object): Promise<T> {
    const res = await this.send(method, path, body, query);
    const text = await res.text();
    return (text ? JSON.parse(text) : null) as T;
  }

  private async *streamTurn(sessionId: string, body: StartTurnBody): AsyncGenerator<TurnEvent> {
    const res = await this.send('POST', `/v1/sessions/${seg(sessionId)}/turns/stream`, body, undefined, { accept: 'text/event-stream' });
    let turnId: string | null = null;
    let last: number | null = null;
    try {
      for await (const e of readEvents(res)) {
        if (turnId === null && e.event === 'turn') turnId = e.data.turn_id;
        if (e.id !== null) last = e.id;
        yield e;
        if (e.event === 'done') return;
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (turnId === null) throw new ApiError(0, 'STREAM_LOST', `the connection dropped before the turn's first event: ${(err as Error).message}`);
    }
    // Dropped (or ended early): the rest of the turn, after the last event received.
    if (turnId === null) throw new ApiError(0, 'STREAM_LOST', 'the stream ended before the turn started');
    yield* this.follow(`/v1/sessions/${seg(sessionId)}/turns/${seg(turnId)}/events`, last, true);
  }

  private async *follow(path: string, after: number | null, untilDone: boolean): AsyncGenerator<TurnEvent> {
    let last = after;
    let failingSince: number | null = null;
    let failures = 0;
    // Dropped, cut short, or refused for a moment (a restart, a proxy's 502/503/504): tried again for reconnectForMs.
    const retry = async (err: unknown) => {
      const now = Date.now();
      failingSince ??= now;
      failures++;
      if (now - failingSince > this.reconnectForMs) {
        throw new ApiError(0, 'STREAM_LOST', `the stream could not be resumed for ${Math.round(this.reconnectForMs / 1000)} s: ${(err as Error).message}`);
      }
      await sleep(Math.min(200 * 2 ** failures, 5_000));
    };
    const transient = (err: unknown) => !(err instanceof ApiError) || [502, 503, 504].includes(err.status);
    for (;;) {
      let res: Response;
      try {
        res = await this.send('GET', path, undefined, undefined, { accept: 'text/event-stream', ...(last !== null ? { 'last-event-id': String(last) } : {}) });
      } catch (err) {
        if (!transient(err)) throw err;
        await retry(err);
        continue;
      }
      if (res.status === 204) return;
      try {
        for await (const e of readEvents(res)) {
          failingSince = null;
          failures = 0;
          if (e.id !== null) last = e.id;
          yield e;
          if (untilDone && e.event === 'done') return;
        }
        // Ended without the turn's done (the server stopped, a proxy cut it): resumed.
        await retry(new Error('the stream ended early'));
      } catch (err) {
        if (err instanceof ApiError) throw err;
        await retry(err);
      }
    }
  }
}

/** Parses a text/event-stream body (comments are heartbeats; an event ends at a blank line). */
async function* readEvents(res: Response): AsyncGenerator<TurnEvent> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let event = 'message';
  let data: string[] = [];
  let id: string | null = null;
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) {
            const raw = data.join('\n');
            let parsed: unknown = raw;
            try {
              parsed = JSON.parse(raw);
            } catch {
              // not JSON: kept as text
            }
            yield { id: id !== null && /^\d+$/.test(id) ? Number(id) : null, event, data: parsed } as TurnEvent;
          }
          event = 'message';
          data = [];
          id = null;
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
          else if (field === 'id') id = value;
        }
      }
    }
  } finally {
    reader.releaseLock();
    await res.body.cancel().catch(() => {});
  }
}

async function toError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let err: Partial<ErrorBody['error']> = {};
  try {
    err = (JSON.parse(text) as ErrorBody).error ?? {};
  } catch {
    err = { message: text.slice(0, 500) };
  }
  const retry = Number(res.headers.get('retry-after'));
  return new ApiError(
    res.status,
    err.code ?? 'HTTP_ERROR',
    err.message ?? res.statusText,
    err.request_id ?? res.headers.get('x-request-id'),
    err.details,
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
}

const seg = (s: string) => encodeURIComponent(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
