/**
 * Load: 50 sessions x 5 turns from 8 clients at once, against the server run as its own
 * process (as `npm start` runs it), or against several replicas of it over one PostgreSQL, with
 * the peak memory of the servers and their CLI processes. Lost turns are counted from the
 * transcripts as the API reads them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freshDatabase, startServerProcess, type ServerProcess } from './server.js';
import { fmt, median, p90, type Row } from './stats.js';
import { cliPids, memOf } from './proc.js';

const SESSIONS = Number(process.env.BENCH_LOAD_SESSIONS ?? 50);
const TURNS = Number(process.env.BENCH_LOAD_TURNS ?? 5);
const CLIENTS = Number(process.env.BENCH_LOAD_CLIENTS ?? 8);

/** User prompts in a page of GET .../messages (what the model was asked), system reminders left out. */
function countPrompts(messages: Array<{ type: string; message?: { content?: unknown } }>): number {
  return messages.filter((m) => {
    if (m.type !== 'user') return false;
    const c = m.message?.content;
    if (typeof c === 'string') return !c.startsWith('<system-reminder>');
    return Array.isArray(c) && c.some((b: { type?: string; text?: string }) => b.type === 'text' && !(b.text ?? '').startsWith('<system-reminder>'));
  }).length;
}

export interface LoadResult {
  row: Row;
  turnsPerSecond: number;
  p50: number;
  p90: number;
}

/**
 * `replicas` 0: one server on SQLite (the default setup). `replicas` >= 1: that many server
 * processes over one fresh PostgreSQL database with the transcript store, each with its own
 * CLAUDE_CONFIG_DIR; turn k of session n goes to replica (n + k) mod replicas.
 */
export async function loadBench(modelUrl: string, opts: { replicas?: number } = {}): Promise<LoadResult> {
  const replicas = opts.replicas ?? 0;
  const label = replicas === 0 ? 'one server, SQLite' : `${replicas} replica${replicas > 1 ? 's' : ''}, PostgreSQL`;
  console.log(`\n--- load: ${SESSIONS} sessions x ${TURNS} turns, ${CLIENTS} clients at once, ${label} ---`);
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-load-')));
  const db = replicas > 0 ? await freshDatabase('css_bench_load') : null;
  const servers: ServerProcess[] = [];
  for (let i = 0; i < Math.max(1, replicas); i++) {
    const env: Record<string, string> = { PREWARM_SPARES: '1' };
    if (db) Object.assign(env, { DATABASE_URL: db.url, TRANSCRIPT_STORE: 'database', WORKSPACE_ROOT: path.join(root, 'workspace') });
    servers.push(await startServerProcess(path.join(root, `r${i}`), modelUrl, env));
  }
  let peak = { rss: 0, pss: 0, processes: 0 };
  const sampler = setInterval(() => {
    const pids = servers.flatMap((s) => [s.child.pid!, ...cliPids(s.configDir, { helpers: true }).filter((p) => p !== s.child.pid)]);
    const m = pids.map(memOf).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss }), { rss: 0, pss: 0 });
    if (m.pss > peak.pss) peak = { ...m, processes: pids.length - servers.length };
  }, 250);

  const post = async (base: string, url: string, body: unknown) => {
    const r = await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: await r.json() };
  };
  const baseFor = (n: number, k: number) => servers[(n + k) % servers.length]!.base;
  const latencies: number[] = [];
  const sessions: string[] = [];
  let next = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (;;) {
        const n = next++;
        if (n >= SESSIONS) return;
        for (let k = 0; k < TURNS; k++) {
          const t1 = performance.now();
          const r =
            k === 0
              ? await post(baseFor(n, k), '/v1/sessions', { prompt: `Remember: my favorite number is ${n}`, project: `load-${n % 5}` })
              : await post(baseFor(n, k), `/v1/sessions/${sessions[n]}/turns`, { prompt: k === TURNS - 1 ? 'What is my favorite number?' : `turn ${k}` });
          latencies.push(performance.now() - t1);
          if (k === 0) sessions[n] = r.body.session_id;
          const turn = k === 0 ? r.body.turn : r.body;
          if (r.status >= 300 || turn?.status !== 'succeeded') errors++;
          if (k === TURNS - 1 && !new RegExp(`\\b${n}\\b`).test(turn?.result ?? '')) errors++;
        }
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);

  // Lost turns: every session's transcript (as the API reads it) must hold its turns, once each.
  let lost = 0;
  for (const [n, id] of sessions.entries()) {
    const base = baseFor(n, 1);
    const s = await (await fetch(`${base}/v1/sessions/${id}`)).json();
    const page = await (await fetch(`${base}/v1/sessions/${id}/messages?limit=500`)).json();
    lost += Math.abs(TURNS - countPrompts(page.messages ?? []));
    if (s.turn_count !== TURNS) lost += Math.abs(TURNS - s.turn_count);
  }
  for (const s of servers) await s.stop();
  await db?.drop();
  fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });

  const total = SESSIONS * TURNS;
  const mb = (b: number) => fmt(b / 1_048_576, 0);
  const tps = total / wall;
  console.log(`${total} turns in ${fmt(wall)} s: ${fmt(tps)} turns/s; latency p50 ${fmt(median(latencies))} ms, p90 ${fmt(p90(latencies))} ms`);
  console.log(`peak memory of ${servers.length} server process(es) + ${peak.processes} CLI processes: RSS ${mb(peak.rss)} MB, PSS ${mb(peak.pss)} MB`);
  console.log(`errors ${errors}, lost turns ${lost}`);
  return {
    turnsPerSecond: tps,
    p50: median(latencies),
    p90: p90(latencies),
    row: {
      name: `load ${SESSIONS} sessions x ${TURNS} turns, ${CLIENTS} clients, ${label}`,
      figures: `${fmt(tps)} turns/s; p50 ${fmt(median(latencies))} ms p90 ${fmt(p90(latencies))} ms; peak RSS ${mb(peak.rss)} MB (PSS ${mb(peak.pss)} MB, ${peak.processes} CLI processes); errors ${errors}; lost ${lost}`,
      goal: '0 lost',
      ok: lost === 0 && errors === 0,
    },
  };
}
