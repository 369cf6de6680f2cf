/**
 * Load: 50 sessions x 5 turns from 8 clients at once, against the server run as its own
 * process (as `npm start` runs it), with the peak memory of the server and its CLI processes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServerProcess } from './server.js';
import { fmt, median, p90, type Row } from './stats.js';

const SESSIONS = Number(process.env.BENCH_LOAD_SESSIONS ?? 50);
const TURNS = Number(process.env.BENCH_LOAD_TURNS ?? 5);
const CLIENTS = Number(process.env.BENCH_LOAD_CLIENTS ?? 8);

function memOf(pid: number): { rss: number; pss: number } {
  try {
    const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    const pss = Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) * 1024;
    return { rss, pss };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

function cliPids(configDir: string): number[] {
  const needle = Buffer.from(`CLAUDE_CONFIG_DIR=${configDir}\0`);
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${n}/environ`).includes(needle)) out.push(Number(n));
    } catch {
      // gone
    }
  }
  return out;
}

export async function loadBench(modelUrl: string): Promise<Row> {
  console.log(`\n--- load: ${SESSIONS} sessions x ${TURNS} turns, ${CLIENTS} clients at once, server as its own process ---`);
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-load-')));
  const srv = await startServerProcess(root, modelUrl, { PREWARM_SPARES: '1' });
  const { base, child, configDir } = srv;
  let peak = { rss: 0, pss: 0, processes: 0 };
  const sampler = setInterval(() => {
    const pids = [child.pid!, ...cliPids(configDir)];
    const m = pids.map(memOf).reduce((a, b) => ({ rss: a.rss + b.rss, pss: a.pss + b.pss }), { rss: 0, pss: 0 });
    if (m.pss > peak.pss) peak = { ...m, processes: pids.length - 1 };
  }, 250);

  const post = async (url: string, body: unknown) => {
    const r = await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: r.status, body: (await r.json()) as any };
  };
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
              ? await post('/v1/sessions', { prompt: `Remember: my favorite number is ${n}`, project: `load-${n % 5}` })
              : await post(`/v1/sessions/${sessions[n]}/turns`, { prompt: k === TURNS - 1 ? 'What is my favorite number?' : `turn ${k}` });
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

  // Lost turns: every session's transcript must hold its turns.
  let lost = 0;
  for (const id of sessions) {
    const s = (await (await fetch(`${base}/v1/sessions/${id}`)).json()) as any;
    const prompts = fs
      .readFileSync(s.transcript.path, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'user' && !e.isMeta && (typeof e.message?.content === 'string' || e.message?.content?.some((b: any) => b.type === 'text' && !b.text.startsWith('<system-reminder>'))));
    lost += Math.max(0, TURNS - prompts.length);
    if (s.turn_count !== TURNS) lost += Math.abs(TURNS - s.turn_count);
  }
  await srv.stop();
  fs.rmSync(root, { recursive: true, force: true });

  const total = SESSIONS * TURNS;
  const mb = (b: number) => fmt(b / 1_048_576, 0);
  console.log(`${total} turns in ${fmt(wall)} s: ${fmt(total / wall)} turns/s; latency p50 ${fmt(median(latencies))} ms, p90 ${fmt(p90(latencies))} ms`);
  console.log(`peak memory of server + ${peak.processes} CLI processes: RSS ${mb(peak.rss)} MB, PSS ${mb(peak.pss)} MB`);
  console.log(`errors ${errors}, lost turns ${lost}`);
  return {
    name: `load ${SESSIONS} sessions x ${TURNS} turns, ${CLIENTS} clients`,
    figures: `${fmt(total / wall)} turns/s; p50 ${fmt(median(latencies))} ms p90 ${fmt(p90(latencies))} ms; peak RSS ${mb(peak.rss)} MB (PSS ${mb(peak.pss)} MB, ${peak.processes} CLI processes); errors ${errors}; lost ${lost}`,
    goal: '0 lost',
    ok: lost === 0 && errors === 0,
  };
}
