/**
 * `npm run bench`: figures for the server against the raw SDK, measured in the same run on
 * the same offline model. Sections can be chosen: `npm run bench -- cold list`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { query, listSessions } from '@anthropic-ai/claude-agent-sdk';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { startOfflineModel } from '../src/offline-model/server.js';
import { childEnv } from '../src/claude/runner.js';
import { transcriptPath } from '../src/claude/paths.js';
import type { SessionRow } from '../src/storage/sessions-repo.js';
import { fmt, median, p90, printRows, type Row } from './stats.js';

const sections = process.argv.slice(2);
const want = (s: string) => sections.length === 0 || sections.includes(s);
const rows: Row[] = [];

const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-bench-')));
const dirs = { dataDir: path.join(root, 'data'), workspace: path.join(root, 'workspace'), configDir: path.join(root, 'claude') };
const model = await startOfflineModel();
const config = loadConfig({ DATA_DIR: dirs.dataDir, WORKSPACE_ROOT: dirs.workspace, CLAUDE_CONFIG_DIR: dirs.configDir, MODEL_BACKEND: 'offline', LOG_LEVEL: 'warn', PREWARM_SPARES: '0' });
const app = await buildApp(config, { offlineModel: model });
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
const env = childEnv({ configDir: config.claudeConfigDir, tmpDir: path.join(root, 'raw-tmp'), model: { backend: 'offline', baseUrl: model.url }, sandboxOptIn: false });
fs.mkdirSync(path.join(root, 'raw-tmp'), { recursive: true });

async function api(method: string, url: string, body?: unknown) {
  const r = await fetch(base + url, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : null });
  const json = (await r.json()) as any;
  if (!r.ok) throw new Error(`${method} ${url}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

/** One raw SDK turn, as a hand-written wrapper would run it: a fresh query() with resume. */
async function rawTurn(sessionId: string, cwd: string, prompt: string, resume: boolean): Promise<number> {
  const t0 = performance.now();
  const q = query({
    prompt,
    options: { cwd, permissionMode: 'default', settingSources: [], verbatimPrompts: true, env, ...(resume ? { resume: sessionId } : { sessionId }) },
  });
  for await (const m of q) {
    if (m.type === 'result') {
      if (m.subtype !== 'success' || m.is_error) throw new Error(`raw turn failed: ${JSON.stringify(m).slice(0, 300)}`);
      break;
    }
  }
  q.close();
  return performance.now() - t0;
}

if (want('cold')) {
  const N = Number(process.env.BENCH_COLD_TURNS ?? 15);
  console.log(`\n--- cold turn: API vs raw SDK query({resume}), ${N} turns each, interleaved ---`);
  const s = await api('POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: 'bench-cold' });
  const rawId = randomUUID();
  await rawTurn(rawId, s.cwd, 'Remember: my favorite color is blue', false);
  const apiMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < N; i++) {
    const order = i % 2 === 0 ? ['api', 'raw'] : ['raw', 'api'];
    for (const who of order) {
      if (who === 'api') {
        const t0 = performance.now();
        const t = await api('POST', `/v1/sessions/${s.session_id}/turns`, { prompt: `turn ${i}: what is my favorite color?` });
        apiMs.push(performance.now() - t0);
        if (!/blue/.test(t.result)) throw new Error(`API turn lost the history: ${t.result}`);
      } else {
        rawMs.push(await rawTurn(rawId, s.cwd, `turn ${i}: what is my favorite color?`, true));
      }
    }
  }
  const ratio = median(apiMs) / median(rawMs);
  console.log(`API  median ${fmt(median(apiMs))} ms  p90 ${fmt(p90(apiMs))} ms`);
  console.log(`raw  median ${fmt(median(rawMs))} ms  p90 ${fmt(p90(rawMs))} ms`);
  console.log(`ratio median ${fmt(ratio, 3)}  p90 ${fmt(p90(apiMs) / p90(rawMs), 3)}`);
  rows.push({
    name: 'cold turn (API / raw query({resume}))',
    figures: `API median ${fmt(median(apiMs))} ms p90 ${fmt(p90(apiMs))} ms; raw median ${fmt(median(rawMs))} ms p90 ${fmt(p90(rawMs))} ms; ratio ${fmt(ratio, 3)}`,
    goal: '<= 1.10',
    ok: ratio <= 1.1,
  });
}

if (want('list')) {
  const N = Number(process.env.BENCH_LIST_SESSIONS ?? 10_000);
  console.log(`\n--- list: first page of ${N} sessions through the API vs SDK listSessions({dir, limit: 50}) ---`);
  const seed = await api('POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: 'bench-list' });
  const template = fs.readFileSync(seed.transcript.path, 'utf8');
  const t0 = performance.now();
  const now = Date.now();
  const batch: SessionRow[] = [];
  const db = app.internals.storage.db;
  for (let i = 1; i < N; i++) {
    const id = randomUUID();
    fs.writeFileSync(transcriptPath(config.claudeConfigDir, seed.cwd, id), template.replaceAll(seed.session_id, id));
    batch.push({
      session_id: id, user_id: 'local', session_name: `bench ${i}`, status: 'active', project: 'bench-list', cwd: seed.cwd,
      created_at: now - N + i, last_active: now - N + i, turn_count: 1, total_cost_usd: 0, input_tokens: 0, output_tokens: 0,
      first_prompt: 'Remember: my favorite color is blue', tag: null, permission_mode: 'default', model: null, system_prompt: null, started: 1,
    });
    if (batch.length === 500 || i === N - 1) {
      await db.insertInto('sessions').values(batch.splice(0)).execute();
    }
  }
  console.log(`seeded ${N} sessions (rows + transcripts of ${template.length} bytes each) in ${fmt((performance.now() - t0) / 1000)} s`);
  const apiMs: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t1 = performance.now();
    const page = await api('GET', '/v1/sessions?limit=50');
    apiMs.push(performance.now() - t1);
    if (page.sessions.length !== 50) throw new Error('short page');
  }
  const filtered: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t1 = performance.now();
    await api('GET', '/v1/sessions?limit=50&project=bench-list&q=bench%2099');
    filtered.push(performance.now() - t1);
  }
  const sdkMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t1 = performance.now();
    const got = await listSessions({ dir: seed.cwd, limit: 50 });
    sdkMs.push(performance.now() - t1);
    if (got.length !== 50) throw new Error('SDK short page');
  }
  console.log(`API first page (50)       median ${fmt(median(apiMs))} ms  p90 ${fmt(p90(apiMs))} ms`);
  console.log(`API filtered page (q=...) median ${fmt(median(filtered))} ms  p90 ${fmt(p90(filtered))} ms`);
  console.log(`SDK listSessions limit 50 median ${fmt(median(sdkMs))} ms`);
  rows.push({
    name: `list first page of ${N} sessions`,
    figures: `API median ${fmt(median(apiMs))} ms (filtered ${fmt(median(filtered))} ms); SDK listSessions({dir, limit: 50}) median ${fmt(median(sdkMs))} ms; speed-up x${fmt(median(sdkMs) / median(apiMs), 0)}`,
    goal: '< 20 ms',
    ok: median(apiMs) < 20,
  });
}

await app.close();
await model.close();
fs.rmSync(root, { recursive: true, force: true });
printRows(rows);
