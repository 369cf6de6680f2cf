/** The HTTP API as the page uses it: JSON calls and an SSE reader that resumes after the last id. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** The key the refused call was made with (a 401 forgets that key only). */
  readonly key: string;
  constructor(status: number, code: string, message: string, key = '') {
    super(message);
    this.status = status;
    this.code = code;
    this.key = key;
  }
}

const KEY = 'css-api-key';
/** The key: this tab's, else this browser's (a new tab of the same browser needs no sign-in unless the person chose "this tab only"). */
export const getKey = () => sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY) ?? '';
/** Keeps the key for this browser, or for this tab only; an empty key signs out of both. */
export function setKey(k: string, tabOnly = false): void {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  if (k) (tabOnly ? sessionStorage : localStorage).setItem(KEY, k);
}

/** Forgets a key the server refused, where it is kept (a tab's own key leaves the browser's alone; a newer key stays). */
export function forgetKey(refused: string): void {
  if (!refused) return;
  if (sessionStorage.getItem(KEY) === refused) sessionStorage.removeItem(KEY);
  if (localStorage.getItem(KEY) === refused) localStorage.removeItem(KEY);
}

/** Whether the server answered the last call (the page shows an offline line when not). */
type Reachability = (online: boolean) => void;
const watchers = new Set<Reachability>();
let online = true;
function reachable(ok: boolean) {
  if (ok === online) return;
  online = ok;
  for (const w of watchers) w(ok);
}
export function onReachability(w: Reachability): () => void {
  watchers.add(w);
  return () => watchers.delete(w);
}

function headers(json: boolean): Record<string, string> {
  const h: Record<string, string> = {};
  if (json) h['content-type'] = 'application/json';
  const k = getKey();
  if (k) h.authorization = `Bearer ${k}`;
  return h;
}

export async function api<T = unknown>(method: string, url: string, body?: unknown): Promise<T> {
  let res: Response;
  const key = getKey();
  try {
    res = await fetch(url, { method, headers: headers(body !== undefined), body: body === undefined ? null : JSON.stringify(body) });
  } catch {
    reachable(false);
    throw new ApiError(0, 'OFFLINE', 'The server cannot be reached.');
  }
  reachable(res.status < 502 || res.status > 504);
  const text = await res.text();
  const json: unknown = text ? JSON.parse(text) : null;
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, err?.code ?? 'ERROR', err?.message ?? res.statusText, key);
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
export function follow(
  url: string,
  onEvent: (e: StreamEvent) => void,
  onState?: (s: 'live' | 'reconnecting') => void,
  /** The server refused the stream for good (a 4xx: gone, not the caller's): it is not opened again. */
  onRefused?: (e: ApiError) => void,
): () => void {
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
        const res = await fetch(url, { headers: h, signal: ctrl.signal }).catch((e: unknown) => {
          if (!stopped) reachable(false);
          throw e;
        });
        reachable(res.status < 502 || res.status > 504);
        if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
          const err = ((await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null)?.error;
          stopped = true;
          onRefused?.(new ApiError(res.status, err?.code ?? 'ERROR', err?.message ?? res.statusText, h.authorization?.slice(7) ?? ''));
          return;
        }
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
