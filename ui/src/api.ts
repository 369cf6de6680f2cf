/** The HTTP API as the page uses it: JSON calls and an SSE reader that resumes after the last id. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const KEY = 'css-api-key';
export const getKey = () => sessionStorage.getItem(KEY) ?? '';
export const setKey = (k: string) => (k ? sessionStorage.setItem(KEY, k) : sessionStorage.removeItem(KEY));

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h['content-type'] = 'application/json';
  const k = getKey();
  if (k) h.authorization = `Bearer ${k}`;
  return h;
}

export async function api<T = unknown>(method: string, url: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(url, { method, headers: headers(body !== undefined), body: body === undefined ? null : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'OFFLINE', 'The server cannot be reached.');
  }
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? 'ERROR', err?.message ?? res.statusText);
  }
  return json as T;
}

/** A call whose body or answer is bytes (files): the Response, or the API's error. */
export async function apiRaw(method: string, url: string, body?: Blob | ArrayBuffer): Promise<Response> {
  let res: Response;
  try {
    const h = headers(false);
    if (body !== undefined) h['content-type'] = 'application/octet-stream';
    res = await fetch(url, { method, headers: h, body: body ?? null });
  } catch {
    throw new ApiError(0, 'OFFLINE', 'The server cannot be reached.');
  }
  if (!res.ok) {
    const err = ((await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? 'ERROR', err?.message ?? res.statusText);
  }
  return res;
}

export interface StreamEvent {
  id: number;
  event: string;
  /** The event's JSON data, as the server sent it (its shape depends on `event`). */
  data: unknown;
}

/**
 * Follows an SSE URL with fetch, calling `onEvent` for each event; on a dropped connection it
 * reconnects with Last-Event-ID, so nothing is missed or doubled. Returns a stop function.
 */
export function follow(url: string, onEvent: (e: StreamEvent) => void, onState?: (s: 'live' | 'reconnecting') => void): () => void {
  let last = 0;
  let stopped = false;
  let ctrl: AbortController | null = null;
  const run = async () => {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const h = headers(false);
        h.accept = 'text/event-stream';
        if (last) h['last-event-id'] = String(last);
        const res = await fetch(url, { headers: h, signal: ctrl.signal });
        if (!res.ok || !res.body) throw new Error(String(res.status));
        onState?.('live');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let id = 0;
            let event = '';
            let data: unknown = null;
            for (const line of block.split('\n')) {
              if (line.startsWith('id: ')) id = Number(line.slice(4));
              else if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data = JSON.parse(line.slice(6)) as unknown;
            }
            if (event && id > last) {
              last = id;
              onEvent({ id, event, data });
            }
          }
        }
      } catch {
        // dropped: reconnect below
      }
      if (stopped) return;
      onState?.('reconnecting');
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  void run();
  return () => {
    stopped = true;
    ctrl?.abort();
  };
}
