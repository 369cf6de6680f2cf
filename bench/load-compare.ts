/**
 * Load against the SDK's own ceiling: the same workload (sessions, turns per session, clients at
 * once) run by the server as its own process, by the bare Fastify wrapper of our runner
 * (`bare-server.ts`, the floor of any HTTP server here) and by a raw-SDK harness (`harness.ts`),
 * each given the same bounds: turns at once = clients, the same number of warm processes, one
 * spare. In rounds, the three in a rotating order, each round with new processes. Reported:
 * throughput, latency, the CPU time of the wrapper's own process per turn (from /proc) and of
 * its CLI processes. `knee`: the server with its defaults as clients go 1 to 32.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, startBareServer, startHarness, startServerProcess } from './server.js';
import { cliCpuMeter, cpuOf } from './proc.js';
import { fmt, median, p90, quantile, type Row } from './stats.js';

export interface Workload {
  name: string;
  sessions: number;
  turns: number;
  clients: number;
  /** Only the warm turns are measured: each session's first turn runs before. */
  warmup?: boolean;
}

/** One wrapper under test: a new session with its first prompt, and a turn of a session. */
interface Target {
  pid: number;
  configDir: string;
  first(n: number, prompt: string): Promise<{ session: string; result: string }>;
  turn(n: number, session: string, prompt: string): Promise<string>;
  stop(): Promise<void>;
}

interface RunFigures {
  wallS: number;
  turns: number;
  latencies: number[];
  warmLatencies: number[];
  wrapperCpuMs: number;
  cliCpuMs: number;
  errors: number;
}

const WARM = Number(process.env.BENCH_LOAD_WARM ?? 32);

async function startTarget(kind: string, root: string, modelUrl: string, w: Workload, defaults = false): Promise<Target> {
  const configDir = path.join(root, 'claude');
  const cwdOf = (n: number) => {
    const d = path.join(root, 'ws', `load-${n % 5}`);
    fs.mkdirSync(d, { recursive: true });
    return d;
  };
  if (kind === 'server') {
    const env: Record<string, string> = defaults ? {} : { MAX_CONCURRENT_TURNS: String(w.clients), MAX_WARM_SESSIONS: String(WARM) };
    const s = await startServerProcess(root, modelUrl, { PREWARM_SPARES: '1', CLAUDE_CONFIG_DIR: configDir, ...env });
    return {
      pid: s.child.pid!,
      configDir,
      async first(n, prompt) {
        const r = await api(s.base, 'POST', '/v1/sessions', { prompt, project: `load-${n % 5}` });
        if (r.turn?.status !== 'succeeded') throw new Error(`turn ${r.turn?.status}`);
        return { session: r.session_id, result: r.turn.result };
      },
      async turn(_n, session, prompt) {
        const r = await api(s.base, 'POST', `/v1/sessions/${session}/turns`, { prompt });
        if (r.status !== 'succeeded') throw new Error(`turn ${r.status}`);
        return r.result;
      },
      stop: () => s.stop(),
    };
  }
  if (kind === 'bare') {
    const b = await startBareServer(root, configDir, modelUrl, { BARE_MAX_CONCURRENT: String(w.clients), BARE_MAX_WARM: String(WARM), BARE_SPARES: '1' });
    return {
      pid: b.pid,
      configDir,
      async first(n, prompt) {
        const r = await api(b.base, 'POST', '/new', { cwd: cwdOf(n), prompt });
        return { session: r.session_id, result: r.result };
      },
      async turn(n, session, prompt) {
        return (await api(b.base, 'POST', '/turn', { session, cwd: cwdOf(n), prompt })).result;
      },
      stop: () => b.stop(),
    };
  }
  const h = await startHarness(root, configDir, modelUrl, { HARNESS_MAX_CONCURRENT: String(w.clients), HARNESS_MAX_WARM: String(WARM), HARNESS_SPARES: '1' });
  return {
    pid: h.pid,
    configDir,
    async first(n, prompt) {
      const r = await h.ask({ op: 'new', cwd: cwdOf(n), prompt });
      return { session: r.session, result: r.result };
    },
    async turn(n, session, prompt) {
      return (await h.ask({ op: 'turn', session, cwd: cwdOf(n), prompt })).result;
    },
    stop: () => h.stop(),
  };
}

/**
 * The workload against one target: each client takes the next session and runs its turns in order.
 * With `warmup`, every session's first turn runs before the clock and the CPU meters start, and
 * only the warm turns after it are measured.
 */
async function drive(t: Target, w: Workload, warmup: boolean): Promise<RunFigures> {
  // Let the spare finish starting: every side begins with one ready.
  await new Promise((r) => setTimeout(r, 1_500));
  const sessions: string[] = [];
  let errors = 0;
  const firstTurn = async (n: number) => {
    try {
      sessions[n] = (await t.first(n, `Remember: my favorite number is ${n}`)).session;
    } catch {
      errors++;
    }
  };
  const clients = async (job: (n: number) => Promise<void>) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: w.clients }, async () => {
        for (let n = next++; n < w.sessions; n = next++) await job(n);
      }),
    );
  };
  if (warmup) await clients(firstTurn);
  const cli = cliCpuMeter(t.configDir, [t.pid]);
  const cpu0 = cpuOf(t.pid);
  const latencies: number[] = [];
  const warmLatencies: number[] = [];
  const t0 = performance.now();
  await clients(async (n) => {
    for (let k = warmup ? 1 : 0; k < w.turns; k++) {
      const t1 = performance.now();
      if (k === 0) await firstTurn(n);
      else if (sessions[n] === undefined) return;
      else {
        const last = k === w.turns - 1;
        try {
          const result = await t.turn(n, sessions[n], last ? 'What is my favorite number?' : `turn ${k}`);
          if (last && !new RegExp(`\\b${n}\\b`).test(result)) errors++;
        } catch {
          errors++;
        }
      }
      const ms = performance.now() - t1;
      latencies.push(ms);
      if (k > 0) warmLatencies.push(ms);
    }
  });
  const wallS = (performance.now() - t0) / 1000;
  const wrapperCpuMs = cpuOf(t.pid) - cpu0;
  cli.stop();
  return { wallS, turns: latencies.length, latencies, warmLatencies, wrapperCpuMs, cliCpuMs: cli.total(), errors };
}

const KINDS = ['harness', 'bare', 'server'] as const;
const LABEL: Record<string, string> = { harness: 'raw SDK harness', bare: 'bare wrapper', server: 'server' };

/** The workload against the three, in `rounds` rounds; prints and returns the summary rows. */
export async function compareLoad(modelUrl: string, w: Workload, rounds: number): Promise<Row[]> {
  console.log(
    `\n--- load, ${w.name}: ${w.sessions} sessions x ${w.turns} turns, ${w.clients} clients; bound ${w.clients} turns at once, ${WARM} warm, 1 spare; ${rounds} round(s) ---`,
  );
  const all = new Map<string, RunFigures[]>();
  for (let r = 0; r < rounds; r++) {
    const order = KINDS.map((_, i) => KINDS[(i + r) % KINDS.length]!);
    const line: string[] = [];
    for (const kind of order) {
      const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), `css-load-${kind}-`)));
      const t = await startTarget(kind, root, modelUrl, w);
      const f = await drive(t, w, w.warmup ?? false);
      await t.stop();
      // (A CLI of the stopped target may still be writing its last files: removal is tried again.)
      fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
      all.set(kind, [...(all.get(kind) ?? []), f]);
      line.push(`${LABEL[kind]} ${fmt(f.turns / f.wallS)} turns/s p90 ${fmt(p90(f.latencies), 0)} ms`);
    }
    console.log(`round ${r + 1}: ${line.join('; ')}`);
  }
  const sum = (kind: string) => {
    const fs_ = all.get(kind)!;
    const wall = fs_.reduce((a, f) => a + f.wallS, 0);
    const lat = fs_.flatMap((f) => f.latencies);
    const warmLat = fs_.flatMap((f) => f.warmLatencies);
    const turns = fs_.reduce((a, f) => a + f.turns, 0);
    return {
      tps: turns / wall,
      p50: median(lat),
      p90: p90(lat),
      p99: quantile(lat, 0.99),
      warmP90: p90(warmLat),
      cpuPerTurn: fs_.reduce((a, f) => a + f.wrapperCpuMs, 0) / turns,
      cliPerTurn: fs_.reduce((a, f) => a + f.cliCpuMs, 0) / turns,
      errors: fs_.reduce((a, f) => a + f.errors, 0),
    };
  };
  const s = Object.fromEntries(KINDS.map((k) => [k, sum(k)])) as Record<(typeof KINDS)[number], ReturnType<typeof sum>>;
  for (const k of KINDS) {
    const x = s[k];
    console.log(
      `${LABEL[k]!.padEnd(16)} ${fmt(x.tps)} turns/s  p50 ${fmt(x.p50, 0)} ms  p90 ${fmt(x.p90, 0)} ms  p99 ${fmt(x.p99, 0)} ms  ` +
        `own CPU ${fmt(x.cpuPerTurn, 2)} ms/turn  CLI CPU ${fmt(x.cliPerTurn, 1)} ms/turn  errors ${x.errors}`,
    );
  }
  const tpsRatio = s.server.tps / s.harness.tps;
  const p90Ratio = s.server.p90 / s.harness.p90;
  const bareTps = s.bare.tps / s.harness.tps;
  const bareP90 = s.bare.p90 / s.harness.p90;
  console.log(
    `server / harness: throughput x${fmt(tpsRatio, 3)}, p90 x${fmt(p90Ratio, 3)}; bare / harness: throughput x${fmt(bareTps, 3)}, p90 x${fmt(bareP90, 3)}`,
  );
  console.log(`own CPU per turn: server ${fmt(s.server.cpuPerTurn, 2)} ms, bare ${fmt(s.bare.cpuPerTurn, 2)} ms, harness ${fmt(s.harness.cpuPerTurn, 2)} ms`);
  // Goal: >= 0.95 of the harness's throughput and p90 <= 1.15x; where the bare wrapper itself is below that, within 0.03 of it.
  const tpsGoal = Math.min(0.95, bareTps - 0.03);
  const p90Goal = Math.max(1.15, bareP90 + 0.03);
  return [
    {
      name: `load ${w.name} (${w.sessions} x ${w.turns}, ${w.clients} clients): server vs raw SDK harness, same run`,
      figures:
        `server ${fmt(s.server.tps)} turns/s p90 ${fmt(s.server.p90, 0)} ms; harness ${fmt(s.harness.tps)} turns/s p90 ${fmt(s.harness.p90, 0)} ms; ` +
        `bare wrapper ${fmt(s.bare.tps)} turns/s p90 ${fmt(s.bare.p90, 0)} ms; server/harness throughput x${fmt(tpsRatio, 3)} p90 x${fmt(p90Ratio, 3)}; ` +
        `errors ${s.server.errors}/${s.bare.errors}/${s.harness.errors}`,
      goal: `throughput >= ${fmt(tpsGoal, 2)}x, p90 <= ${fmt(p90Goal, 2)}x of the harness`,
      ok: tpsRatio >= tpsGoal && p90Ratio <= p90Goal && s.server.errors === 0,
    },
    {
      name: `load ${w.name}: own CPU per turn (wrapper process, /proc)`,
      figures: `server ${fmt(s.server.cpuPerTurn, 2)} ms; bare wrapper ${fmt(s.bare.cpuPerTurn, 2)} ms; harness (SDK alone) ${fmt(s.harness.cpuPerTurn, 2)} ms; CLI ${fmt(s.server.cliPerTurn, 1)}/${fmt(s.bare.cliPerTurn, 1)}/${fmt(s.harness.cliPerTurn, 1)} ms`,
      goal: 'server within 1 ms of the bare wrapper',
      ok: s.server.cpuPerTurn - s.bare.cpuPerTurn <= 1,
    },
  ];
}

/** The server with its defaults as clients go 1, 2, 4, ... 32: each client one session of `turns` turns. */
export async function knee(modelUrl: string, turns: number): Promise<Row> {
  const counts = (process.env.BENCH_KNEE_CLIENTS ?? '1,2,4,8,16,32').split(',').map(Number);
  console.log(`\n--- load knee: the server with its defaults, clients ${counts.join(', ')}, each one session of ${turns} turns ---`);
  const parts: string[] = [];
  for (const clients of counts) {
    const w = { name: 'knee', sessions: clients, turns, clients, warmup: true };
    const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-knee-')));
    const t = await startTarget('server', root, modelUrl, w, true);
    const f = await drive(t, w, true);
    await t.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    const tps = f.turns / f.wallS;
    console.log(
      `${String(clients).padStart(2)} clients: ${fmt(tps)} turns/s  warm p50 ${fmt(median(f.warmLatencies), 0)} ms  p90 ${fmt(p90(f.warmLatencies), 0)} ms  errors ${f.errors}`,
    );
    parts.push(`${clients}: ${fmt(tps)}/s p90 ${fmt(p90(f.warmLatencies), 0)} ms`);
  }
  return { name: `load knee (server defaults, ${os.availableParallelism()} cores; turns/s and warm p90 by clients)`, figures: parts.join('; ') };
}
