/**
 * The load section's raw-SDK harness, not a product: what a careful hand-written wrapper does with
 * the SDK alone, with the same bounds the server is given. At most `HARNESS_MAX_CONCURRENT` turns
 * run at once (the rest wait in line); each session's process stays open after a turn
 * (streaming input), and past `HARNESS_MAX_WARM` the least recently used idle one is closed; a
 * session without a process resumes (`resume`) once its last process has ended; new sessions
 * claim one of `HARNESS_SPARES` prewarmed processes when one is ready. No HTTP, no database, no
 * event log: the SDK's own cost. It runs as its own process (forked by the bench, asked over the
 * IPC channel) so that its CPU time is its own, as the server's and the bare wrapper's are.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { prewarm, query, type Options, type Query, type SDKMessage, type SDKUserMessage, type SpareProcess } from '@anthropic-ai/claude-agent-sdk';
import { Inbox } from '../src/claude/live-session.js';
import { childEnv } from '../src/claude/runner/index.js';
import { benchIsolation } from './server.js';

const root = process.env.HARNESS_ROOT!;
const configDir = process.env.CLAUDE_CONFIG_DIR!;
const maxConcurrent = Number(process.env.HARNESS_MAX_CONCURRENT ?? 8);
const maxWarm = Number(process.env.HARNESS_MAX_WARM ?? 8);
const spareTarget = Number(process.env.HARNESS_SPARES ?? 0);
const tmpDir = path.join(root, 'tmp');
const base: Options = {
  ...benchIsolation([configDir, tmpDir, root]),
  permissionMode: 'default',
  settingSources: [],
  verbatimPrompts: true,
  includePartialMessages: true,
  env: childEnv({ configDir, tmpDir, model: { backend: 'offline', baseUrl: process.env.ANTHROPIC_BASE_URL! }, sandboxOptIn: false }),
};

interface Live {
  inbox: Inbox;
  q: Query;
  it: AsyncIterator<SDKMessage>;
  busy: boolean;
  lastUsed: number;
}
const live = new Map<string, Live>();
/** Each session's closed process, until it has ended (its exit writes the transcript). */
const ending = new Map<string, Promise<void>>();

// Turns running at once: a line of waiters beyond the bound.
let running = 0;
const line: Array<() => void> = [];
async function slot(): Promise<void> {
  if (running < maxConcurrent) {
    running++;
    return;
  }
  await new Promise<void>((r) => line.push(r));
}
function release() {
  const next = line.shift();
  if (next) next();
  else running--;
}

// Spares: prewarmed processes with a session id chosen up front.
const spares: Array<{ id: string; spare: SpareProcess }> = [];
let warming = 0;
function refill() {
  for (; spares.length + warming < spareTarget;) {
    warming++;
    const id = randomUUID();
    prewarm({ options: { ...base, sessionId: id } })
      .then((spare) => spares.push({ id, spare }))
      .catch(() => {})
      .finally(() => warming--);
  }
}
refill();

function close(id: string, s: Live) {
  live.delete(id);
  s.inbox.end();
  s.q.close();
  const done = (async () => {
    try {
      for (;;) if ((await s.it.next()).done) return;
    } catch {
      // ended
    }
  })();
  ending.set(id, done);
  void done.then(() => {
    if (ending.get(id) === done) ending.delete(id);
  });
}

function open(id: string, cwd: string, isNew: boolean, spare?: SpareProcess): Live {
  const inbox = new Inbox();
  let q: Query;
  if (spare) {
    q = spare.claim({ prompt: inbox as AsyncIterable<SDKUserMessage>, options: { cwd, permissionMode: 'default' } });
  } else {
    q = query({ prompt: inbox, options: { ...base, cwd, ...(isNew ? { sessionId: id } : { resume: id }) } });
  }
  return { inbox, q, it: q[Symbol.asyncIterator](), busy: false, lastUsed: 0 };
}

async function turn(id: string, cwd: string, prompt: string, isNew: boolean, spare?: SpareProcess): Promise<string> {
  await slot();
  try {
    let s = live.get(id);
    if (!s) {
      await ending.get(id);
      s = open(id, cwd, isNew, spare);
      live.set(id, s);
    }
    s.busy = true;
    s.inbox.push(prompt);
    for (;;) {
      const { value, done } = await s.it.next();
      if (done) throw new Error('the process ended during the turn');
      if (value.type === 'result') {
        if (value.subtype !== 'success' || value.is_error) throw new Error(`turn failed: ${value.subtype}`);
        s.busy = false;
        s.lastUsed = performance.now();
        park();
        return value.result;
      }
    }
  } finally {
    release();
  }
}

/** The least recently used idle processes past the bound are closed. */
function park() {
  let over = live.size - maxWarm;
  if (over <= 0) return;
  const idle = [...live].filter(([, s]) => !s.busy).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
  for (const [id, s] of idle) {
    if (over-- <= 0) break;
    close(id, s);
  }
}

process.on('message', (m: { n: number; op: 'new' | 'turn' | 'close'; session?: string; cwd: string; prompt: string }) => {
  if (m.op === 'close') {
    for (const [id, s] of live) close(id, s);
    for (const s of spares.splice(0)) s.spare.close();
    void Promise.all(ending.values()).then(() => process.send!({ n: m.n, ok: true }, () => process.exit(0)));
    return;
  }
  // A new session takes a ready spare (and its id) when it arrives, as the server's new sessions do.
  const spare = m.op === 'new' ? spares.shift() : undefined;
  if (spare) refill();
  const id = m.op === 'new' ? (spare?.id ?? randomUUID()) : m.session!;
  turn(id, m.cwd, m.prompt, m.op === 'new', spare?.spare).then(
    (result) => process.send!({ n: m.n, ok: true, session: id, result }),
    (e: Error) => process.send!({ n: m.n, ok: false, error: e.message }),
  );
});
process.send!({ ready: true });
