/**
 * Soak: `BENCH_SOAK_TURNS` (5,000) turns over `BENCH_SOAK_SESSIONS` (100) sessions from 8 clients,
 * mixed (scripts/soak.ts: warm, cold, dropped streams, interrupts, approvals, deletes), against
 * the server as its own process with 16 warm processes at most (so many turns resume a closed
 * session). At each tenth: the server's RSS, heap, open descriptors, the database's size, CLI
 * processes alive and DATA_DIR/tmp. Goals: flat over the last half (< 5% growth; the database
 * grows with what it stores), no lost turn, no process left after the server stops.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runSoak, sizeOf } from '../scripts/soak.js';
import { gauge, startServerProcess } from './server.js';
import { cliPids, memOf } from './proc.js';
import { fmt, type Row } from './stats.js';

const MB = 1_048_576;

export interface Sample {
  done: number;
  rss: number;
  heap: number;
  fds: number;
  db: number;
  clis: number;
  tmpBytes: number;
  tmpEntries: number;
}

export async function soakBench(modelUrl: string): Promise<Row[]> {
  const TURNS = Number(process.env.BENCH_SOAK_TURNS ?? 5_000);
  const SESSIONS = Number(process.env.BENCH_SOAK_SESSIONS ?? 100);
  const WARM = 16;
  console.log(`\n--- soak: ${TURNS} turns over ${SESSIONS} sessions, 8 clients, ${WARM} warm processes at most ---`);
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-soak-')));
  const data = path.join(root, 'data');
  // Polling clients: not what the rate limit is for here.
  const srv = await startServerProcess(root, modelUrl, {
    PREWARM_SPARES: '1',
    MAX_WARM_SESSIONS: String(WARM),
    MAX_CONCURRENT_TURNS: '8',
    RATE_LIMIT_PER_MINUTE: '1000000',
  });
  const pid = srv.child.pid!;
  const samples: Sample[] = [];
  let leftAfterStop = -1;
  try {
    const result = await runSoak(srv.base, {
      turns: TURNS,
      sessions: SESSIONS,
      clients: 8,
      onProgress: async (done) => {
        const db = ['server.db', 'server.db-wal', 'server.db-shm'].reduce(
          (a, f) => a + (fs.statSync(path.join(data, f), { throwIfNoEntry: false })?.size ?? 0),
          0,
        );
        const tmp = sizeOf(path.join(data, 'tmp'));
        const s: Sample = {
          done,
          rss: memOf(pid).rss,
          heap: await gauge(srv.base, 'nodejs_heap_size_used_bytes'),
          fds: fs.readdirSync(`/proc/${pid}/fd`).length,
          db,
          clis: cliPids(srv.configDir).length,
          tmpBytes: tmp.bytes,
          tmpEntries: tmp.entries,
        };
        samples.push(s);
        console.log(
          `${String(done).padStart(6)} turns: RSS ${fmt(s.rss / MB)} MB  heap ${fmt(s.heap / MB)} MB  fds ${s.fds}  db ${fmt(s.db / MB)} MB  ` +
            `CLIs ${s.clis}  tmp ${fmt(s.tmpBytes / 1024)} KB (${s.tmpEntries} entries)`,
        );
      },
    });
    console.log(
      `${result.turns} operations in ${fmt(result.seconds, 0)} s (${Object.entries(result.byKind)
        .map(([k, v]) => `${k} ${v}, median ${result.medianMs[k]} ms`)
        .join('; ')}); lost ${result.lost}`,
    );
    for (const p of result.problems.slice(0, 10)) console.log(`  ${p}`);
    if (process.env.BENCH_SOAK_DUMP) fs.writeFileSync(process.env.BENCH_SOAK_DUMP, fs.readdirSync(path.join(data, 'tmp'), { recursive: true }).join('\n'));
    await srv.stop();
    await new Promise((r) => setTimeout(r, 1_000));
    leftAfterStop = cliPids(srv.configDir, { helpers: true }).length;
    console.log(`CLI processes left after the server stopped: ${leftAfterStop}`);
    const half = samples[Math.floor(samples.length / 2)]!;
    const end = samples.at(-1)!;
    const growth = (k: keyof Sample) => (end[k] - half[k]) / Math.max(1, half[k]);
    const flat = (['rss', 'heap', 'fds', 'clis', 'tmpEntries'] as const).map((k) => [k, growth(k)] as const);
    console.log(
      `growth over the last half: ${flat.map(([k, g]) => `${k} ${fmt(g * 100)}%`).join(', ')}; db ${fmt(growth('db') * 100)}% (${fmt((end.db - half.db) / Math.max(1, end.done - half.done) / 1024)} KB a turn)`,
    );
    return [
      {
        name: `soak, ${result.turns} mixed operations over ${SESSIONS} sessions`,
        figures:
          `${fmt(result.seconds, 0)} s; server RSS ${fmt(half.rss / MB)} -> ${fmt(end.rss / MB)} MB, heap ${fmt(half.heap / MB)} -> ${fmt(end.heap / MB)} MB, fds ${half.fds} -> ${end.fds}, ` +
          `CLIs ${half.clis} -> ${end.clis}, tmp entries ${half.tmpEntries} -> ${end.tmpEntries} (last half); db ${fmt(end.db / MB)} MB; lost ${result.lost}; processes left ${leftAfterStop}`,
        goal: '< 5% growth over the last half, 0 lost, 0 left',
        ok: flat.every(([, g]) => g < 0.05) && result.lost === 0 && leftAfterStop === 0,
      },
    ];
  } finally {
    await srv.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
