/**
 * Memory per session: what one warm CLI process takes (RSS, and PSS: its share of pages shared
 * with the others), and what an idle session (no process) costs the server, as the server's heap
 * and RSS while the number of idle sessions grows. These figures size MAX_WARM_SESSIONS and
 * MAX_CONCURRENT_TURNS (config.ts, CLI_PRIVATE_MB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { api, startServerProcess } from './server.js';
import { cliPids, memOf } from './proc.js';
import { fmt, median, type Row } from './stats.js';

const MB = 1_048_576;

export async function memoryBench(modelUrl: string): Promise<Row[]> {
  const WARM = Number(process.env.BENCH_MEMORY_WARM ?? 8);
  const IDLE = Number(process.env.BENCH_MEMORY_IDLE ?? 200);
  console.log(`\n--- memory: ${WARM} warm sessions, then ${IDLE} more that go idle (MAX_WARM_SESSIONS=${WARM}) ---`);
  const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-memory-')));
  const srv = await startServerProcess(root, modelUrl, { PREWARM_SPARES: '0', MAX_WARM_SESSIONS: String(WARM), MAX_CONCURRENT_TURNS: '4' });
  const pid = srv.child.pid!;
  try {
    const idle0 = { rss: memOf(pid).rss };
    const ids: string[] = [];
    for (let i = 0; i < WARM; i++) {
      const s = await api(srv.base, 'POST', '/v1/sessions', { prompt: `Remember: my favorite number is ${i}`, project: `mem-${i % 4}` });
      ids.push(s.session_id);
      for (let k = 0; k < 3; k++) await api(srv.base, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `turn ${k}` });
    }
    const clis = cliPids(srv.configDir).map(memOf);
    const perCli = { rss: median(clis.map((m) => m.rss)), pss: median(clis.map((m) => m.pss)) };
    const serverWarm = memOf(pid);
    console.log(
      `${clis.length} warm CLI processes: RSS median ${fmt(perCli.rss / MB)} MB, PSS median ${fmt(perCli.pss / MB)} MB (sum PSS ${fmt(clis.reduce((a, m) => a + m.pss, 0) / MB)} MB)`,
    );
    console.log(`server: RSS ${fmt(idle0.rss / MB)} MB at start, ${fmt(serverWarm.rss / MB)} MB with ${WARM} warm sessions`);

    await srv.stop();
    const idle = await idleSessions(modelUrl, root, WARM, IDLE);
    return [
      {
        name: 'memory per warm CLI process (median of a run)',
        figures: `RSS ${fmt(perCli.rss / MB)} MB, PSS ${fmt(perCli.pss / MB)} MB (${clis.length} processes)`,
      },
      idle,
    ];
  } finally {
    await srv.stop();
    fs.rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}

/**
 * What an idle session (a row, no process) costs the server: the app in this process (the bench
 * runs with --expose-gc), its heap after a full collection as idle sessions go from IDLE/2 to IDLE.
 */
async function idleSessions(modelUrl: string, root: string, warm: number, idle: number): Promise<Row> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.log('idle sessions: skipped (run the bench with NODE_OPTIONS=--expose-gc to measure them)');
    return { name: 'memory per idle session', figures: 'not measured (needs NODE_OPTIONS=--expose-gc)' };
  }
  const app = await buildApp(
    loadConfig({
      DATA_DIR: path.join(root, 'idle-data'),
      WORKSPACE_ROOT: path.join(root, 'idle-workspace'),
      CLAUDE_CONFIG_DIR: path.join(root, 'idle-claude'),
      MODEL_BACKEND: 'anthropic',
      ANTHROPIC_BASE_URL: modelUrl,
      ANTHROPIC_API_KEY: 'offline-model',
      LOG_LEVEL: 'error',
      PREWARM_SPARES: '0',
      MAX_WARM_SESSIONS: String(warm),
    }),
  );
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const heapAfterGc = async () => {
      await new Promise((r) => setTimeout(r, 2_000));
      gc();
      gc();
      return process.memoryUsage().heapUsed;
    };
    const marks: Array<{ n: number; heap: number }> = [];
    let next = 0;
    for (const upTo of [idle / 2, idle]) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = next++; i < upTo; i = next++) await api(base, 'POST', '/v1/sessions', { prompt: 'hello', project: `mem-idle-${i % 10}` });
        }),
      );
      next = upTo;
      marks.push({ n: upTo, heap: await heapAfterGc() });
    }
    const alive = cliPids(path.join(root, 'idle-claude')).length;
    const [a, b] = marks as [(typeof marks)[0], (typeof marks)[0]];
    const per = (b.heap - a.heap) / (b.n - a.n);
    console.log(
      `idle sessions ${a.n} -> ${b.n} (app in this process, heap after a full GC): ${fmt(a.heap / MB)} -> ${fmt(b.heap / MB)} MB, ${fmt(per / 1024, 2)} KB a session; CLI processes alive ${alive}`,
    );
    return {
      name: `memory per idle session (server heap after a full GC, ${a.n} -> ${b.n} idle sessions)`,
      figures: `${fmt(per / 1024, 2)} KB a session; CLI processes alive ${alive} (bound ${warm})`,
      goal: 'no process beyond the warm bound, heap < 2 KB a session',
      ok: alive <= warm && per < 2 * 1024,
    };
  } finally {
    await app.close();
  }
}
