/**
 * @module offline-model/server
 * A loopback HTTP endpoint that speaks the Anthropic Messages API (streaming and not) well
 * enough for the real Claude Code CLI: message_start … message_stop with text and tool_use
 * blocks. The server starts it when no credentials are configured, so `npm start` works with
 * no account, and the tests run the real SDK and CLI against it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { plan, type Plan } from './script.js';

export interface OfflineModel {
  /** Base URL to hand the CLI as ANTHROPIC_BASE_URL. */
  readonly url: string;
  /** Number of Messages requests answered so far. */
  readonly requests: number;
  /** Messages requests being answered right now, and the most seen at once since `resetPeak()`. */
  readonly inFlight: number;
  readonly peakInFlight: number;
  resetPeak(): void;
  /** The last requests' message lists (newest last), for tests that check what the CLI sent. */
  readonly recent: ReadonlyArray<unknown[]>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tokens = (s: string) => Math.max(1, Math.ceil(s.length / 4));

function sendJson(res: http.ServerResponse, status: number, body: unknown) {
  const s = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
  res.end(s);
}

function errorType(status: number): string {
  if (status === 400) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 529) return 'overloaded_error';
  return 'api_error';
}

/** Splits text into small pieces so that clients see it stream. */
function chunks(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

interface RequestBody {
  model?: string;
  stream?: boolean;
  messages?: unknown[];
  tools?: Array<{ name?: string }>;
  system?: unknown;
  thinking?: unknown;
  output_config?: unknown;
}

async function respond(res: http.ServerResponse, body: RequestBody) {
  const p: Plan = plan((body.messages ?? []) as Parameters<typeof plan>[0], {
    tools: Array.isArray(body.tools) ? body.tools : [],
    model: body.model,
    system: body.system,
    thinking: body.thinking,
    output_config: body.output_config,
  });
  if (p.kind === 'fail') {
    sendJson(res, p.status, { type: 'error', error: { type: errorType(p.status), message: p.message } });
    return;
  }
  // The client may hang up while we wait (an interrupted turn): stop writing then.
  let gone = false;
  res.on('close', () => (gone = true));
  if (p.delayMs > 0) await sleep(p.delayMs);
  if (gone) return;
  const id = `msg_offline_${randomUUID().replace(/-/g, '')}`;
  const model = body.model ?? 'offline';
  const inputTokens = tokens(JSON.stringify(body.messages ?? []));
  const outputTokens = tokens(p.text) + (p.toolUse ? 20 : 0);
  const toolId = `toolu_offline_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
  const stopReason = p.toolUse ? 'tool_use' : 'end_turn';

  if (!body.stream) {
    const content: unknown[] = [{ type: 'text', text: p.text }];
    if (p.toolUse) content.push({ type: 'tool_use', id: toolId, name: p.toolUse.name, input: p.toolUse.input });
    sendJson(res, 200, {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content,
      stop_reason: stopReason,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: outputTokens },
    });
    return;
  }

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  const ev = (event: string, data: Record<string, unknown>) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  ev('message_start', {
    message: {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: inputTokens, output_tokens: 1 },
    },
  });
  ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  const pieces = p.clock ? Array.from({ length: p.clock }, () => '') : chunks(p.text);
  for (let i = 0; i < pieces.length; i++) {
    if (p.clock) pieces[i] = `@${(performance.timeOrigin + performance.now()).toFixed(3)} `;
    if (p.cut && i >= Math.floor(pieces.length / 2)) {
      await sleep(20); // let what was written reach the client first
      res.destroy();
      return;
    }
    ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: pieces[i] } });
    if (p.chunkDelayMs > 0) await sleep(p.chunkDelayMs);
    if (gone) return;
  }
  if (p.cut) {
    res.destroy();
    return;
  }
  ev('content_block_stop', { index: 0 });
  if (p.toolUse) {
    ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: toolId, name: p.toolUse.name, input: {} } });
    ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: JSON.stringify(p.toolUse.input) } });
    ev('content_block_stop', { index: 1 });
  }
  ev('message_delta', { delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } });
  ev('message_stop', {});
  res.end();
}

/** Starts the offline model on 127.0.0.1 (a free port unless one is given). */
export async function startOfflineModel(opts: { port?: number; host?: string } = {}): Promise<OfflineModel> {
  let requests = 0;
  let inFlight = 0;
  let peak = 0;
  const recent: unknown[][] = [];
  const server = http.createServer((req, res) => {
    const chunksIn: Buffer[] = [];
    req.on('data', (c: Buffer) => chunksIn.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      if (req.method === 'POST' && url.startsWith('/v1/messages/count_tokens')) {
        sendJson(res, 200, { input_tokens: tokens(Buffer.concat(chunksIn).toString()) });
        return;
      }
      if (req.method === 'POST' && url.startsWith('/v1/messages')) {
        let body: Parameters<typeof respond>[1];
        try {
          body = JSON.parse(Buffer.concat(chunksIn).toString('utf8')) as typeof body;
        } catch {
          sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'body is not JSON' } });
          return;
        }
        requests++;
        recent.push(body.messages ?? []);
        if (recent.length > 20) recent.shift();
        inFlight++;
        peak = Math.max(peak, inFlight);
        let counted = true;
        const done = () => {
          if (counted) inFlight--;
          counted = false;
        };
        res.once('close', done);
        respond(res, body).catch(() => res.destroy());
        return;
      }
      sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: `offline model has no ${req.method} ${url}` } });
    });
  });
  server.keepAliveTimeout = 5_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    get requests() {
      return requests;
    },
    get inFlight() {
      return inFlight;
    },
    get peakInFlight() {
      return peak;
    },
    resetPeak() {
      peak = inFlight;
    },
    recent,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
