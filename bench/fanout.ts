/**
 * Fan-out: many SSE subscribers on sessions while turns stream. The offline model stamps each
 * streamed piece with its clock (`[[clock:N]]`); subscribers (in worker processes,
 * `fanout-worker.ts`) record how late each piece reached them. The floor is the raw SDK in this
 * process, reading the same stamped pieces as its CLI emits them. Checked: every subscriber gets
 * every event, in order; one slow subscriber (it stops reading for 3 s) slows neither the others
 * nor the turn (turn times against a session nobody follows, interleaved).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { query, type Options } from '@anthropic-ai/claude-agent-sdk';
import { api, startServerProcess, START_NODE_FLAGS } from './server.js';
import { fmt, median, quantile, type Row } from './stats.js';

const PIECES = 40;
const PROMPT = `[[clock:${PIECES}]] [[slow:200]]`;
const SLOW_MS = 3_000;

interface SubReport {
  session: string;
  count: number;
  first: number;
  last: number;
  outOfOrder: number;
  refused: number;
  lags: number[];
}

async function workers(n: number): Promise<ChildProcess[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const w = fork('bench/fanout-worker.ts', [], { execArgv: [...START_NODE_FLAGS, '--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      await new Promise((r) => w.once('message', r));
      return w;
    }),
  );
}
const ask = (w: ChildProcess, m: Record<string, unknown>) =>
  new Promise<any>((resolve) => {
    w.once('message', resolve);
    w.send(m);
  });

/** Lags of the raw SDK reading the same stamped pieces: the floor of any delivery. */
async function rawLags(options: Options, cwd: string, turns: number): Promise<number[]> {
  const lags: number[] = [];
  for (let i = 0; i < turns; i++) {
    const q = query({ prompt: PROMPT, options: { ...options, cwd, sessionId: randomUUID() } });
    for await (const m of q) {
      const at = performance.timeOrigin + performance.now();
      if (m.type === 'stream_event' && m.event.type === 'content_block_delta' && m.event.delta.type === 'text_delta') {
        const t = /^@(\d+\.\d{3}) $/.exec(m.event.delta.text);
        if (t) lags.push(at - Number(t[1]));
      }
      if (m.type === 'result') break;
    }
    q.close();
  }
  return lags;
}

/**
 * `sessions` sessions with `perSession` subscribers each (in `nWorkers` processes), `turns` turns per
 * session, `parallel` sessions' turns at once; one subscriber is slow when `slow`.
 */
async function scenario(modelUrl: string, o: { sessions: number; perSession: number; turns: number; parallel: number; nWorkers: number; slow: boolean }) {
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-fanout-')));
  // Thousands of streams from one client: not what the rate limit is for here.
  const srv = await startServerProcess(root, modelUrl, {
    PREWARM_SPARES: '0',
    MAX_CONCURRENT_TURNS: String(Math.max(o.parallel, 2)),
    RATE_LIMIT_PER_MINUTE: '100000',
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < o.sessions; i++) ids.push((await api(srv.base, 'POST', '/v1/sessions', { prompt: 'hello', project: `fan-${i % 5}` })).session_id);
    // A session nobody follows: its turns are the reference for how long a turn takes.
    const alone = (await api(srv.base, 'POST', '/v1/sessions', { prompt: 'hello', project: 'fan-alone' })).session_id as string;
    const ws = await workers(o.nWorkers);
    const all = ids.flatMap((id) => Array.from({ length: o.perSession }, () => id));
    const share = Math.ceil(all.length / ws.length);
    await Promise.all(
      ws.map((w, i) =>
        ask(w, { op: 'start', base: srv.base, sessions: all.slice(i * share, (i + 1) * share), ...(o.slow && i === 0 ? { slow: 0, slowMs: SLOW_MS } : {}) }),
      ),
    );
    const followed: number[] = [];
    const unfollowed: number[] = [];
    const timed = async (id: string, into: number[]) => {
      const t0 = performance.now();
      await api(srv.base, 'POST', `/v1/sessions/${id}/turns`, { prompt: PROMPT });
      into.push(performance.now() - t0);
    };
    for (let k = 0; k < o.turns; k++) {
      let next = 0;
      await Promise.all(
        Array.from({ length: o.parallel }, async () => {
          for (let n = next++; n < ids.length; n = next++) await timed(ids[n]!, followed);
        }),
      );
      await timed(alone, unfollowed);
    }
    // The slow subscriber catches up; then every stream is read to its session's last event.
    await new Promise((r) => setTimeout(r, o.slow ? SLOW_MS + 1_000 : 1_000));
    const reports: SubReport[] = (await Promise.all(ws.map((w) => ask(w, { op: 'stop' })))).flatMap((r: { subs: SubReport[] }) => r.subs);
    const lastOf = new Map<string, number>();
    for (const r of reports) lastOf.set(r.session, Math.max(lastOf.get(r.session) ?? 0, r.last));
    const refused = reports.filter((r) => r.refused !== 0).length;
    if (refused > 0) console.log(`  ${refused} streams were refused (status ${reports.find((r) => r.refused)!.refused})`);
    const incomplete = reports.filter((r) => r.first !== 1 || r.count !== lastOf.get(r.session) || r.outOfOrder > 0).length;
    const lags = reports.slice(o.slow ? 1 : 0).flatMap((r) => r.lags);
    const slowLags = o.slow ? reports[0]!.lags : [];
    return { reports, incomplete, lags, slowLags, followed, unfollowed, expected: o.sessions * o.turns * PIECES * o.perSession };
  } finally {
    await srv.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

export async function fanoutBench(modelUrl: string, rawOptions: Options, workspace: string): Promise<Row[]> {
  const rows: Row[] = [];
  const cwd = path.join(workspace, 'fanout-raw');
  fs.mkdirSync(cwd, { recursive: true });
  const TURNS = Number(process.env.BENCH_FANOUT_TURNS ?? 10);
  console.log(`\n--- fan-out: pieces stamped by the model (${PIECES} a turn, 10 ms apart), delivery lag to each subscriber ---`);
  const floor = await rawLags(rawOptions, cwd, 5);
  console.log(`raw SDK (floor): lag p50 ${fmt(median(floor))} ms  p99 ${fmt(quantile(floor, 0.99))} ms  (${floor.length} pieces)`);
  const cases = [
    { name: '500 subscribers on one session (one slow)', sessions: 1, perSession: 500, turns: TURNS, parallel: 1, nWorkers: 4, slow: true },
    { name: '2,000 subscribers across 50 sessions', sessions: 50, perSession: 40, turns: 1, parallel: 8, nWorkers: 8, slow: false },
    // What one of four replicas behind a balancer carries of the 500: the writes are one core's work per process.
    {
      name: "125 subscribers on one session (500 over 4 replicas: one replica's share)",
      sessions: 1,
      perSession: 125,
      turns: TURNS,
      parallel: 1,
      nWorkers: 4,
      slow: false,
    },
  ];
  for (const c of cases) {
    const r = await scenario(modelUrl, c);
    const p99 = quantile(r.lags, 0.99);
    const turnRatio = median(r.followed) / median(r.unfollowed);
    console.log(
      `${c.name}: ${r.reports.length} subscribers; ${r.lags.length} of ${r.expected} stamped pieces received; incomplete or out of order: ${r.incomplete}`,
    );
    console.log(
      `  lag p50 ${fmt(median(r.lags))} ms  p90 ${fmt(quantile(r.lags, 0.9))} ms  p99 ${fmt(p99)} ms  max ${fmt(r.lags.reduce((a, b) => Math.max(a, b), 0))} ms`,
    );
    if (c.slow)
      console.log(
        `  the slow subscriber: lag max ${fmt(r.slowLags.reduce((a, b) => Math.max(a, b), 0))} ms (it stopped reading for ${SLOW_MS} ms), every event: ${r.reports[0]!.count === r.reports[0]!.last}`,
      );
    console.log(`  turn median ${fmt(median(r.followed), 0)} ms followed vs ${fmt(median(r.unfollowed), 0)} ms unfollowed (x${fmt(turnRatio, 2)})`);
    rows.push({
      name: `fan-out, ${c.name}`,
      figures:
        `lag p50 ${fmt(median(r.lags))} ms p99 ${fmt(p99)} ms (raw SDK floor p99 ${fmt(quantile(floor, 0.99))} ms); ` +
        `every event in order: ${r.incomplete === 0 ? 'yes' : `no (${r.incomplete} subscribers)`}; turn x${fmt(turnRatio, 2)} of an unfollowed one`,
      goal: 'p99 < 50 ms, every event in order',
      ok: p99 < 50 && r.incomplete === 0 && r.lags.length === r.expected - (c.slow ? TURNS * PIECES : 0),
    });
  }
  return rows;
}
