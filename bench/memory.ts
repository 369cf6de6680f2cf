/**
 * Memory per session: what one warm CLI process takes (RSS, and PSS: its share of pages shared
 * with the others), and what an idle session (no process) costs the server, as the server's heap
 * and RSS while the number of idle sessions grows. These figures size MAX_WARM_SESSIONS and
 * MAX_CONCURRENT_TURNS (config.ts, CLI_PRIVATE_MB).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { api, gauge, startServerProcess } from './server.js';
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
  const heap = () => gauge(srv.base, 'nodejs_heap_size_used_bytes');
  try {
    const idle0 = { rss: memOf(pid).rss, heap: await heap() };
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

    // Sessions that go idle: each runs a turn, then the least recently used process is closed.
    const marks: Array<{ n: number; rss: number; heap: number }> = [];
    let next = 0;
    for (const upTo of [IDLE / 2, IDLE]) {
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = next++; i < upTo; i = next++) await api(srv.base, 'POST', '/v1/sessions', { prompt: 'hello', project: `mem-idle-${i % 10}` });
        }),
      );
      next = upTo;
      await new Promise((r) => setTimeout(r, 3_000));
      marks.push({ n: upTo, rss: memOf(pid).rss, heap: await heap() });
    }
    const warmNow = cliPids(srv.configDir).length;
    const [a, b] = marks as [(typeof marks)[0], (typeof marks)[0]];
    const heapPer = (b.heap - a.heap) / (b.n - a.n);
    const rssPer = (b.rss - a.rss) / (b.n - a.n);
    console.log(
      `idle sessions ${a.n} -> ${b.n}: server heap ${fmt(a.heap / MB)} -> ${fmt(b.heap / MB)} MB, RSS ${fmt(a.rss / MB)} -> ${fmt(b.rss / MB)} MB; CLI processes alive ${warmNow}`,
    );
    console.log(`per idle session: heap ${fmt(heapPer / 1024)} KB, RSS ${fmt(rssPer / 1024)} KB`);
    return [
      {
        name: 'memory per warm CLI process (median of a run)',
        figures: `RSS ${fmt(perCli.rss / MB)} MB, PSS ${fmt(perCli.pss / MB)} MB (${clis.length} processes)`,
      },
      {
        name: `memory per idle session (server, ${a.n} -> ${b.n} idle sessions)`,
        figures: `heap ${fmt(heapPer / 1024)} KB, RSS ${fmt(rssPer / 1024)} KB per session; CLI processes alive ${warmNow} (bound ${WARM})`,
        goal: 'no process beyond the warm bound, heap < 10 KB a session',
        ok: warmNow <= WARM && heapPer < 10 * 1024,
      },
    ];
  } finally {
    await srv.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}
