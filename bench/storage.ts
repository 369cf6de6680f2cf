/**
 * `npm run bench -- storage`: what a long session costs the database, and what reading it back
 * costs everyone else. One session of BENCH_STORAGE_TURNS turns (300), each answering
 * BENCH_STORAGE_WORDS words (2,000, ~11 KB) streamed a word per event, on SQLite, through the server
 * as its own process.
 * - "kept": the server keeps every partial (PARTIAL_EVENTS_KEEP_MS of a day: the log as it was
 *   before compaction). "compacted": the same data after a restart with PARTIAL_EVENTS_KEEP_MS=0.
 * - Stored bytes per finished turn: the session's event rows plus its turn rows (prompt, result),
 *   against the transcript's bytes per turn (the CLI's own record of the same conversation).
 * - Replay: reading the session's whole event stream (`?after=0`) to its last event.
 * - `/health` while 5 clients replay that log at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { api, startServerProcess } from './server.js';
import { fmt, median, p90, type Row } from './stats.js';

/** Reads a session's event stream from the start to event `lastSeq`; returns ms and bytes. */
async function replay(base: string, sessionId: string, lastSeq: number): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/sessions/${sessionId}/events?after=0`, { headers: { accept: 'text/event-stream' } });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const marker = `id: ${lastSeq}\n`;
  let tail = '';
  let bytes = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
    tail += dec.decode(value, { stream: true });
    if (tail.includes(marker)) break;
    tail = tail.slice(-marker.length);
  }
  await reader.cancel().catch(() => {});
  return { ms: performance.now() - t0, bytes };
}

/** One replay in a worker thread: the readers' own work does not delay this thread's /health calls. */
const REPLAY_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
(async () => {
  const t0 = performance.now();
  const res = await fetch(w.url, { headers: { accept: 'text/event-stream' } });
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let tail = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    tail += dec.decode(value, { stream: true });
    if (tail.includes(w.marker)) break;
    tail = tail.slice(-w.marker.length);
  }
  await reader.cancel().catch(() => {});
  parentPort.postMessage(performance.now() - t0);
})();
`;

/** /health latencies while `n` clients (each in a worker thread) replay the session at once. */
async function healthDuringReplays(base: string, sessionId: string, lastSeq: number, n: number) {
  const url = `${base}/v1/sessions/${sessionId}/events?after=0`;
  const replays = Promise.all(
    Array.from({ length: n }, () => {
      const w = new Worker(REPLAY_WORKER, { eval: true, workerData: { url, marker: `id: ${lastSeq}\n` } });
      return new Promise<number>((resolve, reject) => {
        w.once('message', (ms: number) => {
          resolve(ms);
          void w.terminate();
        });
        w.once('error', reject);
      });
    }),
  );
  let done = false;
  void replays.finally(() => (done = true));
  const health: number[] = [];
  while (!done) {
    const t0 = performance.now();
    await fetch(`${base}/health`).then((r) => r.arrayBuffer());
    health.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 5));
  }
  return { health, replayMs: await replays };
}

/** /health latencies with nothing else going on (the floor of the figure above). */
async function healthIdle(base: string, n = 50): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fetch(`${base}/health`).then((r) => r.arrayBuffer());
    out.push(performance.now() - t0);
  }
  return out;
}

export async function storageBench(modelUrl: string, root: string): Promise<Row[]> {
  const N = Number(process.env.BENCH_STORAGE_TURNS ?? 300);
  const W = Number(process.env.BENCH_STORAGE_WORDS ?? 2000);
  const dir = path.join(root, 'srv-storage');
  console.log(`\n--- storage: one session of ${N} turns answering ${W} words each (SQLite), partials kept, then compacted ---`);
  const env = { WORKSPACE_ROOT: path.join(dir, 'workspace') };
  let srv = await startServerProcess(dir, modelUrl, { ...env, PARTIAL_EVENTS_KEEP_MS: String(86_400_000) });
  const s = await api(srv.base, 'POST', '/v1/sessions', {});
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const t = await api(srv.base, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `[[words:${W}]] turn ${i}` });
    if (t.status !== 'succeeded') throw new Error(`turn ${i} ended ${t.status}: ${JSON.stringify(t.error)}`);
  }
  console.log(`${N} turns in ${fmt((performance.now() - t0) / 1000)} s`);
  const db = new SQLite(path.join(dir, 'data', 'server.db'), { readonly: true });
  const measure = async () => {
    const ev = db
      .prepare('select transient, count(*) as n, sum(length(cast(data as blob))) as b from events where session_id = ? group by transient')
      .all(s.session_id) as Array<{ transient: number; n: number; b: number }>;
    const turns = db
      .prepare('select count(*) as n, sum(length(cast(prompt as blob)) + coalesce(length(cast(result as blob)), 0)) as b from turns where session_id = ?')
      .get(s.session_id) as { n: number; b: number };
    const last = db.prepare('select max(seq) as m from events where session_id = ?').get(s.session_id) as { m: number };
    const session = await api(srv.base, 'GET', `/v1/sessions/${s.session_id}`);
    const rows = ev.reduce((a, r) => a + r.n, 0);
    const bytes = ev.reduce((a, r) => a + r.b, 0) + turns.b;
    return { rows, partials: ev.find((r) => r.transient === 1)?.n ?? 0, bytes, transcript: session.transcript.bytes as number, last: last.m, turns: turns.n };
  };
  const report = async (label: string) => {
    const m = await measure();
    const one = await replay(srv.base, s.session_id, m.last);
    const idle = await healthIdle(srv.base);
    const busy = await healthDuringReplays(srv.base, s.session_id, m.last, 5);
    const perTurn = m.bytes / N;
    const ratio = m.bytes / m.transcript;
    console.log(
      `${label}: ${m.rows} event rows (${m.partials} partials), ${fmt(perTurn / 1024)} KB stored per turn vs ${fmt(m.transcript / N / 1024)} KB of transcript (x${fmt(ratio, 2)})`,
    );
    console.log(
      `${label}: replay of the whole log ${fmt(one.ms)} ms (${fmt(one.bytes / 1048576)} MB); 5 at once: median ${fmt(median(busy.replayMs))} ms; /health meanwhile median ${fmt(median(busy.health))} ms, p90 ${fmt(p90(busy.health))} ms, max ${fmt(Math.max(...busy.health))} ms (${busy.health.length} calls; idle median ${fmt(median(idle))} ms)`,
    );
    return { m, one, busy, perTurn, ratio };
  };
  const kept = await report('kept');
  await srv.stop();
  // The same data, served by a server that keeps no partials of ended turns: its first sweep compacts.
  srv = await startServerProcess(dir, modelUrl, { ...env, PARTIAL_EVENTS_KEEP_MS: '0' });
  const c0 = performance.now();
  while ((await measure()).partials > 0) await new Promise((r) => setTimeout(r, 100));
  const compactSec = (performance.now() - c0) / 1000;
  console.log(`compacted ${kept.m.partials} partials within ${fmt(compactSec)} s of the restart`);
  const after = await report('compacted');
  await srv.stop();
  db.close();
  const dbBytes = fs.statSync(path.join(dir, 'data', 'server.db')).size;
  console.log(`server.db after compaction: ${fmt(dbBytes / 1048576)} MB (free pages are reused, not returned to the disk)`);
  return [
    {
      name: `storage per finished turn (${N} turns of ${W} words)`,
      figures: `kept partials ${fmt(kept.perTurn / 1024)} KB (x${fmt(kept.ratio, 2)} the transcript); compacted ${fmt(after.perTurn / 1024)} KB (x${fmt(after.ratio, 2)}); ${kept.m.rows} -> ${after.m.rows} event rows`,
      goal: '<= 2x the transcript',
      ok: after.ratio <= 2,
    },
    {
      name: `replay of the ${N}-turn log, and /health during 5 replays`,
      figures: `replay ${fmt(kept.one.ms)} -> ${fmt(after.one.ms)} ms; /health p90 ${fmt(p90(kept.busy.health))} -> ${fmt(p90(after.busy.health))} ms, max ${fmt(Math.max(...kept.busy.health))} -> ${fmt(Math.max(...after.busy.health))} ms`,
      goal: '/health < 50 ms',
      ok: p90(after.busy.health) < 50,
    },
  ];
}
