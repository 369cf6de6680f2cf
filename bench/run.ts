/**
 * `npm run bench`: figures for the server against the raw SDK, measured in the same run on the
 * same offline model. The server runs as its own process (as `npm start` runs it); the raw
 * baselines run the SDK in this process. Sections can be chosen: `npm run bench -- cold warm`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { query, listSessions, type Options } from '@anthropic-ai/claude-agent-sdk';
import { loadConfig } from '../src/config.js';
import { buildApp } from '../src/app.js';
import { startOfflineModel } from '../src/offline-model/server.js';
import { childEnv, createClaudeRunner } from '../src/claude/runner/index.js';
import { Inbox } from '../src/claude/live-session.js';
import { transcriptPath } from '../src/claude/paths.js';
import type { SessionRow } from '../src/storage/sessions-repo.js';
import { fmt, median, p90, printRows, type Row } from './stats.js';
import { api, benchIsolation, freshDatabase, gauge, startBareServer, startServerProcess } from './server.js';
import { sql } from 'kysely';
import { loadBench } from './load.js';
import { compareLoad, knee } from './load-compare.js';
import { fanoutBench } from './fanout.js';
import { memoryBench } from './memory.js';
import { soakBench } from './soak.js';
import { storageBench } from './storage.js';

/** A session row seeded by the list benchmarks: one finished turn, the same first prompt. */
const benchRow = (id: string, i: number, project: string, cwd: string, at: number): SessionRow => ({
  session_id: id,
  user_id: 'local',
  session_name: `bench ${i}`,
  status: 'active',
  project,
  cwd,
  created_at: at,
  last_active: at,
  turn_count: 1,
  total_cost_usd: 0,
  input_tokens: 0,
  output_tokens: 0,
  first_prompt: 'Remember: my favorite color is blue',
  tag: null,
  permission_mode: 'default',
  model: null,
  system_prompt: null,
  agent_id: null,
  agent_version: null,
  options: null,
  started: 1,
});

const sections = process.argv.slice(2);
const want = (s: string) => sections.length === 0 || sections.includes(s);
const rows: Row[] = [];

const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'css-bench-')));
const model = await startOfflineModel();
const configDir = path.join(root, 'claude');
const workspace = path.join(root, 'workspace');
const env = childEnv({ configDir, tmpDir: path.join(root, 'raw-tmp'), model: { backend: 'offline', baseUrl: model.url }, sandboxOptIn: false });
fs.mkdirSync(path.join(root, 'raw-tmp'), { recursive: true });
/** The options the server gives the CLI, for the raw SDK baselines. */
const rawOptions: Options = {
  ...benchIsolation([configDir, path.join(root, 'raw-tmp')]),
  permissionMode: 'default',
  settingSources: [],
  verbatimPrompts: true,
  includePartialMessages: true,
  env,
};

/** One raw SDK turn as a hand-written wrapper runs it: a fresh query() (new, or resume). */
async function rawTurn(sessionId: string, cwd: string, prompt: string, resume: boolean): Promise<{ first: number; total: number }> {
  const t0 = performance.now();
  const q = query({ prompt, options: { ...rawOptions, cwd, ...(resume ? { resume: sessionId } : { sessionId }) } });
  let first = 0;
  for await (const m of q) {
    if (!first) first = performance.now() - t0;
    if (m.type === 'result') {
      if (m.subtype !== 'success' || m.is_error) throw new Error(`raw turn failed: ${JSON.stringify(m).slice(0, 300)}`);
      break;
    }
  }
  q.close();
  return { first, total: performance.now() - t0 };
}

/** A raw Query in streaming-input mode, prompts pushed one at a time: `turn` answers each one's time. */
function rawStreaming(options: Options): { turn: (prompt: string) => Promise<number>; close: () => void } {
  const inbox = new Inbox();
  const q = query({ prompt: inbox, options });
  const it = q[Symbol.asyncIterator]();
  return {
    turn: async (prompt) => {
      const t0 = performance.now();
      inbox.push(prompt);
      for (;;) {
        const { value, done } = await it.next();
        if (done) throw new Error('raw query ended');
        if (value.type === 'result') break;
      }
      return performance.now() - t0;
    },
    close: () => {
      inbox.end();
      q.close();
    },
  };
}

function compare(name: string, goal: number, apiMs: number[], rawMs: number[], lower = 'API', upper = 'raw') {
  const ratio = median(apiMs) / median(rawMs);
  console.log(`${lower}  median ${fmt(median(apiMs))} ms  p90 ${fmt(p90(apiMs))} ms`);
  console.log(`${upper}  median ${fmt(median(rawMs))} ms  p90 ${fmt(p90(rawMs))} ms`);
  console.log(`ratio median ${fmt(ratio, 3)}  p90 ${fmt(p90(apiMs) / p90(rawMs), 3)}`);
  rows.push({
    name,
    figures: `${lower} median ${fmt(median(apiMs))} ms p90 ${fmt(p90(apiMs))} ms; ${upper} median ${fmt(median(rawMs))} ms p90 ${fmt(p90(rawMs))} ms; ratio ${fmt(ratio, 3)}`,
    goal: `<= ${goal}`,
    ok: ratio <= goal,
  });
}

if (want('cold') || want('warm')) {
  // WARM_IDLE_MS=0: every turn starts a CLI process, as a wrapper calling query({resume}) does.
  // Several rounds, each with a new server, session and raw Query: every CLI process has a speed of
  // its own (the JIT of each settles differently), and one pair of processes alone makes a run's
  // ratio swing by several per cent (rounds of one run spread over 1.03-1.23). What moves a run's
  // figure is the number of rounds, not of turns per round: 6 of 60. The figures pool all rounds.
  for (const mode of ['cold', 'warm'] as const) {
    if (!want(mode)) continue;
    const M = mode.toUpperCase();
    const N = Number(process.env[`BENCH_${M}_TURNS`] ?? (mode === 'cold' ? 15 : 60));
    const R = Math.max(1, Number(process.env[`BENCH_${M}_ROUNDS`] ?? (mode === 'cold' ? 1 : 6)));
    console.log(
      `\n--- ${mode} turn: API vs raw SDK ${mode === 'cold' ? 'query({resume})' : 'streaming-input turn'}, ${R} round(s) of ${N} turns each, interleaved ---`,
    );
    const apiMs: number[] = [];
    const rawMs: number[] = [];
    const perRound: string[] = [];
    for (let r = 0; r < R; r++) {
      const srv = await startServerProcess(path.join(root, `srv-${mode}-${r}`), model.url, {
        CLAUDE_CONFIG_DIR: configDir,
        WORKSPACE_ROOT: workspace,
        WARM_IDLE_MS: mode === 'cold' ? '0' : '300000',
      });
      const s = await api(srv.base, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: `bench-${mode}-${r}` });
      const rawId = randomUUID();
      let rawWarm: ((p: string) => Promise<number>) | null = null;
      let close = () => {};
      if (mode === 'cold') await rawTurn(rawId, s.cwd, 'Remember: my favorite color is blue', false);
      else {
        // The raw baseline: one Query in streaming-input mode, prompts pushed one at a time.
        const raw = rawStreaming({ ...rawOptions, cwd: s.cwd, sessionId: rawId });
        rawWarm = raw.turn;
        await rawWarm('Remember: my favorite color is blue');
        close = raw.close;
      }
      const a: number[] = [];
      const b: number[] = [];
      for (let i = 0; i < N; i++) {
        for (const who of i % 2 === 0 ? ['api', 'raw'] : ['raw', 'api']) {
          const prompt = `${mode} ${i}: what is my favorite color?`;
          if (who === 'api') {
            const t0 = performance.now();
            const t = await api(srv.base, 'POST', `/v1/sessions/${s.session_id}/turns`, { prompt });
            a.push(performance.now() - t0);
            if (!/blue/.test(t.result)) throw new Error(`API turn lost the history: ${t.result}`);
          } else b.push(rawWarm ? await rawWarm(prompt) : (await rawTurn(rawId, s.cwd, prompt, true)).total);
        }
      }
      close();
      await srv.stop();
      apiMs.push(...a);
      rawMs.push(...b);
      perRound.push(`${fmt(median(a))}/${fmt(median(b))} (${fmt(median(a) / median(b), 3)})`);
    }
    if (R > 1) console.log(`by round, API/raw median ms (ratio): ${perRound.join('; ')}`);
    compare(mode === 'cold' ? 'cold turn (API / raw query({resume}))' : 'warm turn (API / raw streaming-input turn)', 1.1, apiMs, rawMs);
  }
}

if (want('sandbox')) {
  // What the CLI's sandbox costs, and whether the API adds anything on top of it: a warm turn with
  // one Bash call (bypassPermissions: no approval in the way) through the API and through the raw
  // SDK, each with the sandbox on and off, interleaved; then a new session's first turn (a cold
  // start, no spare) the same four ways. The sandbox's own cost is the floor. Goals: a warm turn's
  // API/raw ratio with the sandbox within 0.05 of the ratio without it; a sandboxed session's start
  // costs no more than the CLI's own sandboxed start (API/raw <= 1.05; a start's samples are few
  // and spread, so the plain ratio is shown beside it, not subtracted).
  const N = Number(process.env.BENCH_SANDBOX_TURNS ?? 30);
  const C = Number(process.env.BENCH_SANDBOX_STARTS ?? 10);
  console.log(`\n--- sandbox: ${N} warm turns with one Bash call, and ${C} new sessions, each way (API/raw x on/off), interleaved ---`);
  const ways = ['on', 'off'] as const;
  const extra = { IS_SANDBOX: '1', ALLOWED_PERMISSION_MODES: 'default,bypassPermissions' };
  const srv = {
    on: await startServerProcess(path.join(root, 'srv-sandbox-on'), model.url, { ...extra, SANDBOX: 'auto', WARM_IDLE_MS: '300000' }),
    off: await startServerProcess(path.join(root, 'srv-sandbox-off'), model.url, { ...extra, SANDBOX: 'off', WARM_IDLE_MS: '300000' }),
  };
  const health = await api(srv.on.base, 'GET', '/health');
  if (!health.sandbox?.enabled) throw new Error(`the sandbox is not on in the server: ${JSON.stringify(health.sandbox)}`);
  const rawEnv = { ...env, IS_SANDBOX: '1' };
  const rawOpts = (w: 'on' | 'off'): Options => ({
    ...benchIsolation([configDir, path.join(root, 'raw-tmp')], w === 'on' ? 'auto' : 'off'),
    permissionMode: 'bypassPermissions',
    allowDangerouslySkipPermissions: true,
    settingSources: [],
    verbatimPrompts: true,
    includePartialMessages: true,
    env: rawEnv,
  });
  const prompt = (i: number) => `[[bash:echo turn-${i}]]`;
  const check = (text: string, i: number) => {
    if (!text.includes(`turn-${i}`)) throw new Error(`the Bash call did not run: ${text}`);
  };
  const warm: Record<string, number[]> = { 'API on': [], 'raw on': [], 'API off': [], 'raw off': [] };
  const sessions: Record<string, { id: string; cwd: string }> = {};
  const rawWarm: Record<string, (p: string) => Promise<{ ms: number; text: string }>> = {};
  const closers: Array<() => void> = [];
  for (const w of ways) {
    const s = await api(srv[w].base, 'POST', '/v1/sessions', { prompt: 'hello', permission_mode: 'bypassPermissions', project: `sandbox-${w}` });
    sessions[w] = { id: s.session_id, cwd: s.cwd };
    const cwd = path.join(workspace, `raw-sandbox-${w}`);
    fs.mkdirSync(cwd, { recursive: true });
    const inbox = new Inbox();
    const q = query({ prompt: inbox, options: { ...rawOpts(w), cwd, sessionId: randomUUID() } });
    const it = q[Symbol.asyncIterator]();
    rawWarm[w] = async (p) => {
      const t0 = performance.now();
      inbox.push(p);
      for (;;) {
        const { value, done } = await it.next();
        if (done) throw new Error('raw query ended');
        if (value.type === 'result') return { ms: performance.now() - t0, text: value.subtype === 'success' ? value.result : JSON.stringify(value) };
      }
    };
    await rawWarm[w]('hello');
    closers.push(() => {
      inbox.end();
      q.close();
    });
  }
  for (let i = 0; i < N; i++) {
    const order = i % 2 === 0 ? (['API on', 'raw on', 'API off', 'raw off'] as const) : (['raw off', 'API off', 'raw on', 'API on'] as const);
    for (const way of order) {
      const w = way.endsWith('on') ? 'on' : 'off';
      if (way.startsWith('API')) {
        const t0 = performance.now();
        const t = await api(srv[w].base, 'POST', `/v1/sessions/${sessions[w]!.id}/turns`, { prompt: prompt(i) });
        warm[way]!.push(performance.now() - t0);
        check(t.result, i);
      } else {
        const r = await rawWarm[w]!(prompt(i));
        warm[way]!.push(r.ms);
        check(r.text, i);
      }
    }
  }
  for (const c of closers) c();
  const starts: Record<string, number[]> = { 'API on': [], 'raw on': [], 'API off': [], 'raw off': [] };
  for (let i = 0; i < C; i++) {
    for (const w of i % 2 === 0 ? ways : [...ways].reverse()) {
      let t0 = performance.now();
      const s = await api(srv[w].base, 'POST', '/v1/sessions', { prompt: prompt(i), permission_mode: 'bypassPermissions', project: `sandbox-start-${w}-${i}` });
      starts[`API ${w}`]!.push(performance.now() - t0);
      check(s.turn.result, i);
      const cwd = path.join(workspace, `raw-sandbox-start-${w}-${i}`);
      fs.mkdirSync(cwd, { recursive: true });
      t0 = performance.now();
      const q = query({ prompt: prompt(i), options: { ...rawOpts(w), cwd, sessionId: randomUUID() } });
      for await (const m of q) {
        if (m.type === 'result') {
          check(m.subtype === 'success' ? m.result : JSON.stringify(m), i);
          break;
        }
      }
      starts[`raw ${w}`]!.push(performance.now() - t0);
      q.close();
    }
  }
  await srv.on.stop();
  await srv.off.stop();
  for (const [title, m] of [
    ['warm turn with one Bash call', warm],
    ['new session, first turn with one Bash call', starts],
  ] as const) {
    for (const [way, ms] of Object.entries(m)) console.log(`${title}, ${way}: median ${fmt(median(ms))} ms  p90 ${fmt(p90(ms))} ms`);
    const withSandbox = median(m['API on']!) / median(m['raw on']!);
    const without = median(m['API off']!) / median(m['raw off']!);
    const floor = median(m['raw on']!) - median(m['raw off']!);
    console.log(`${title}: API/raw ${fmt(withSandbox, 3)} sandboxed, ${fmt(without, 3)} plain; the sandbox itself (raw on - raw off) ${fmt(floor)} ms`);
    const start = m === starts;
    rows.push({
      name: `sandbox: ${title} (API/raw sandboxed vs plain)`,
      figures: `API on ${fmt(median(m['API on']!))} ms, raw on ${fmt(median(m['raw on']!))} ms, API off ${fmt(median(m['API off']!))} ms, raw off ${fmt(median(m['raw off']!))} ms; ratio ${fmt(withSandbox, 3)} vs ${fmt(without, 3)}; sandbox floor +${fmt(floor)} ms`,
      goal: start ? 'sandboxed API/raw <= 1.05' : 'within 0.05 of the plain ratio',
      ok: start ? withSandbox <= 1.05 : withSandbox - without <= 0.05,
    });
  }
}

if (want('breakdown')) {
  // Where a warm turn's time goes, all interleaved: the raw SDK; our runner alone (the same Query in
  // streaming-input mode, our options); the whole app in this process through inject and through
  // HTTP on loopback; the server as its own process (what the warm section measures); and the least
  // an HTTP wrapper of the runner can be, as its own process (bench/bare-server.ts): what the HTTP
  // hop and a second process cost by themselves. In rounds, each with new processes (see warm).
  const N = Number(process.env.BENCH_BREAKDOWN_TURNS ?? 40);
  const R = Math.max(1, Number(process.env.BENCH_BREAKDOWN_ROUNDS ?? 3));
  console.log(`\n--- warm turn breakdown: ${R} round(s) of ${N} turns each way, interleaved ---`);
  const times = new Map<string, number[]>();
  for (let r = 0; r < R; r++) {
    const cwd = path.join(workspace, `bench-breakdown-${r}`);
    fs.mkdirSync(cwd, { recursive: true });
    const inbox = new Inbox();
    const q = query({ prompt: inbox, options: { ...rawOptions, cwd, sessionId: randomUUID() } });
    const it = q[Symbol.asyncIterator]();
    const raw = async (p: string) => {
      inbox.push(p);
      for (;;) {
        const { value, done } = await it.next();
        if (done) throw new Error('raw query ended');
        if (value.type === 'result') return;
      }
    };
    const runner = createClaudeRunner({
      configDir,
      tmpDir: path.join(root, 'runner-tmp'),
      model: { backend: 'offline', baseUrl: model.url },
      sandboxOptIn: false,
      isolation: benchIsolation([configDir, path.join(root, 'runner-tmp')]),
      turnTimeoutMs: 600_000,
      warmIdleMs: 300_000,
      maxWarm: 8,
      spares: 0,
    });
    const runnerId = randomUUID();
    let runnerStarted = false;
    const viaRunner = async (p: string) => {
      const o = await runner.runTurn({
        sessionId: runnerId,
        cwd,
        prompt: p,
        resume: runnerStarted,
        permissionMode: 'default',
        model: null,
        options: null,
        title: null,
        onMessage: () => {},
      });
      if (o.status !== 'succeeded') throw new Error(`runner turn ${o.status}`);
      runnerStarted = true;
    };
    const app = await buildApp(
      loadConfig({
        DATA_DIR: path.join(root, `breakdown-data-${r}`),
        WORKSPACE_ROOT: workspace,
        CLAUDE_CONFIG_DIR: configDir,
        MODEL_BACKEND: 'offline',
        LOG_LEVEL: 'error',
        PREWARM_SPARES: '0',
      }),
      { offlineModel: model },
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const inApp = await api(base, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: `bench-breakdown-app-${r}` });
    const srv = await startServerProcess(path.join(root, `srv-breakdown-${r}`), model.url, { CLAUDE_CONFIG_DIR: configDir, WORKSPACE_ROOT: workspace });
    const inProc = await api(srv.base, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: `bench-breakdown-proc-${r}` });
    const bare = await startBareServer(path.join(root, `bare-${r}`), configDir, model.url);
    const bareSession = randomUUID();
    const ways: Array<[string, (p: string) => Promise<void>]> = [
      ['raw SDK', raw],
      ['our runner alone', viaRunner],
      [
        'app in this process, inject',
        async (p) => {
          const res = await app.inject({ method: 'POST', url: `/v1/sessions/${inApp.session_id}/turns`, payload: { prompt: p } });
          if (res.statusCode !== 200) throw new Error(res.body);
        },
      ],
      [
        'app in this process, HTTP',
        async (p) => {
          await api(base, 'POST', `/v1/sessions/${inApp.session_id}/turns`, { prompt: p });
        },
      ],
      [
        'server as its own process, HTTP',
        async (p) => {
          await api(srv.base, 'POST', `/v1/sessions/${inProc.session_id}/turns`, { prompt: p });
        },
      ],
      [
        'bare Fastify wrapper, own process',
        async (p) => {
          await api(bare.base, 'POST', '/turn', { session: bareSession, cwd, prompt: p });
        },
      ],
    ];
    await raw('Remember: my favorite color is blue');
    await viaRunner('Remember: my favorite color is blue');
    await api(bare.base, 'POST', '/turn', { session: bareSession, cwd, prompt: 'Remember: my favorite color is blue' });
    const roundTimes = new Map<string, number[]>();
    for (let i = 0; i < N; i++) {
      for (let k = 0; k < ways.length; k++) {
        const [name, fn] = ways[(k + i) % ways.length]!;
        const t0 = performance.now();
        await fn(`breakdown ${i}: what is my favorite color?`);
        const ms = performance.now() - t0;
        for (const m of [times, roundTimes]) m.set(name, [...(m.get(name) ?? []), ms]);
      }
    }
    const rawRound = median(roundTimes.get('raw SDK')!);
    console.log(`round ${r + 1}: ${[...roundTimes].map(([name, xs]) => `${name} x${fmt(median(xs) / rawRound, 3)}`).join('; ')}`);
    inbox.end();
    q.close();
    await runner.closeAll();
    await app.close();
    await srv.stop();
    await bare.stop();
  }
  const rawMedian = median(times.get('raw SDK')!);
  const parts: string[] = [];
  for (const [name, xs] of times) {
    console.log(`${name.padEnd(34)} median ${fmt(median(xs))} ms  p90 ${fmt(p90(xs))} ms  x${fmt(median(xs) / rawMedian, 3)}`);
    parts.push(`${name} x${fmt(median(xs) / rawMedian, 2)}`);
  }
  rows.push({ name: 'warm turn breakdown (median vs raw SDK, same run)', figures: parts.join('; ') });
}

if (want('prewarm')) {
  const N = Number(process.env.BENCH_PREWARM_SESSIONS ?? 10);
  console.log(`\n--- new session, first event: API with a prewarmed spare vs a cold raw query(), ${N} each ---`);
  const srv = await startServerProcess(path.join(root, 'srv-prewarm'), model.url, {
    CLAUDE_CONFIG_DIR: configDir,
    WORKSPACE_ROOT: workspace,
    PREWARM_SPARES: '1',
  });
  const cwd = path.join(workspace, 'bench-prewarm');
  fs.mkdirSync(cwd, { recursive: true });
  const apiMs: number[] = [];
  const rawMs: number[] = [];
  for (let i = 0; i < N; i++) {
    const ready = Date.now() + 30_000;
    while ((await gauge(srv.base, 'css_cli_spare_processes')) < 1 && Date.now() < ready) await new Promise((r) => setTimeout(r, 50));
    // API: from the request that creates the session to the first SDK message on its stream.
    const t0 = performance.now();
    const res = await fetch(`${srv.base}/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ prompt: `hello ${i}`, project: 'bench-prewarm' }),
    });
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    let first = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      if (!first && buf.includes('event: message')) first = performance.now() - t0;
      if (buf.includes('event: done')) break;
    }
    await reader.cancel().catch(() => {});
    apiMs.push(first);
    rawMs.push((await rawTurn(randomUUID(), cwd, `hello ${i}`, false)).first);
  }
  await srv.stop();
  compare('new session first event (API with a spare / cold raw query())', 0.3, apiMs, rawMs, 'API (spare) first event', 'raw cold query() first message');
}

if (want('agent')) {
  // A session made from an agent with a stdio MCP server: its first turn cannot use a spare (MCP servers are
  // fixed when a process starts), so it is compared with a raw query() given the same server and tool rule.
  const N = Number(process.env.BENCH_AGENT_SESSIONS ?? 8);
  const W = Number(process.env.BENCH_AGENT_WARM_TURNS ?? 20);
  const fixture = path.resolve('test/fixtures/mcp-server.mjs');
  console.log(`\n--- agent with an MCP server: first turn of ${N} new sessions, then ${W} warm MCP tool turns; API vs raw SDK, interleaved ---`);
  const srv = await startServerProcess(path.join(root, 'srv-agent'), model.url, {
    CLAUDE_CONFIG_DIR: configDir,
    WORKSPACE_ROOT: workspace,
    MCP_ALLOWED_COMMANDS: fixture,
    PREWARM_SPARES: '1',
  });
  const agent = await api(srv.base, 'POST', '/v1/agents', { name: 'bench', mcp_servers: { fixture: { command: fixture } }, allowed_tools: ['mcp__fixture'] });
  const mcp = {
    mcpServers: { fixture: { type: 'stdio' as const, command: fixture, args: [], env: {}, alwaysLoad: true } },
    mcpServersDelivery: 'initialize' as const,
  };
  const prompt = '[[tool:mcp__fixture__add {"a":1,"b":2}]]';
  const cwd = path.join(workspace, 'bench-agent');
  fs.mkdirSync(cwd, { recursive: true });
  const firstApi: number[] = [];
  const firstRaw: number[] = [];
  let sessionId = '';
  for (let i = 0; i < N; i++) {
    let t0 = performance.now();
    const s = await api(srv.base, 'POST', '/v1/sessions', { agent_id: agent.agent_id, prompt, project: 'bench-agent' });
    firstApi.push(performance.now() - t0);
    if (s.turn?.result !== 'The command ran. Output: sum: 3') throw new Error(`agent turn: ${JSON.stringify(s.turn).slice(0, 300)}`);
    sessionId = s.session_id;
    t0 = performance.now();
    const q = query({ prompt, options: { ...rawOptions, cwd, sessionId: randomUUID(), allowedTools: ['mcp__fixture'], ...mcp } });
    for await (const m of q) if (m.type === 'result') break;
    q.close();
    firstRaw.push(performance.now() - t0);
  }
  compare('agent session with an MCP server: first turn (API / raw query())', 1.1, firstApi, firstRaw, 'API first turn', 'raw query() first turn');
  // Warm: the last session's process, and a raw streaming Query with the same server.
  const raw = rawStreaming({ ...rawOptions, cwd, sessionId: randomUUID(), allowedTools: ['mcp__fixture'], ...mcp });
  await raw.turn(prompt);
  const warmApi: number[] = [];
  const warmRaw: number[] = [];
  for (let i = 0; i < W; i++) {
    const t0 = performance.now();
    await api(srv.base, 'POST', `/v1/sessions/${sessionId}/turns`, { prompt });
    warmApi.push(performance.now() - t0);
    warmRaw.push(await raw.turn(prompt));
  }
  raw.close();
  await srv.stop();
  compare('agent session with an MCP server: warm MCP tool turn (API / raw streaming Query)', 1.15, warmApi, warmRaw, 'API warm MCP turn', 'raw warm MCP turn');
}

if (want('files')) {
  // The files API on a server process: the first page of a folder of 10,000 files (goal < 20 ms), next to
  // the floor of reading that folder's names in this process; then a 1 GB file streamed to a client,
  // with the server's resident memory sampled throughout (goal: growth < 50 MB).
  const N = Number(process.env.BENCH_FILES_COUNT ?? 10_000);
  console.log(`\n--- files: first page of a folder of ${N.toLocaleString('en-US')} files; a 1 GB download ---`);
  const srv = await startServerProcess(path.join(root, 'srv-files'), model.url, { CLAUDE_CONFIG_DIR: configDir, WORKSPACE_ROOT: workspace });
  const s = await api(srv.base, 'POST', '/v1/sessions', { project: 'bench-files' });
  const many = path.join(s.cwd, 'many');
  fs.mkdirSync(many, { recursive: true });
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(many, `file-${String(i).padStart(5, '0')}.txt`), `file ${i}\n`);
  const pageMs: number[] = [];
  const floorMs: number[] = [];
  for (let i = 0; i < 30; i++) {
    let t0 = performance.now();
    const page = await api(srv.base, 'GET', `/v1/sessions/${s.session_id}/files?path=many&limit=200`);
    pageMs.push(performance.now() - t0);
    if (page.entries.length !== 200) throw new Error('files page: wrong length');
    t0 = performance.now();
    const names = (await fs.promises.readdir(many)).sort().slice(0, 200);
    await Promise.all(names.map((n) => fs.promises.lstat(path.join(many, n))));
    floorMs.push(performance.now() - t0);
  }
  console.log(
    `first page (200 of ${N}): median ${fmt(median(pageMs))} ms, p90 ${fmt(p90(pageMs))} ms; floor (readdir + sort + 200 lstat here) ${fmt(median(floorMs))} ms`,
  );
  rows.push({
    name: `files: first page of a folder of ${N} files`,
    figures: `median ${fmt(median(pageMs))} ms p90 ${fmt(p90(pageMs))} ms (floor in-process ${fmt(median(floorMs))} ms)`,
    goal: '< 20 ms',
    ok: median(pageMs) < 20,
  });
  const big = path.join(s.cwd, 'big.bin');
  const GB = 1024 ** 3;
  fs.closeSync(fs.openSync(big, 'w'));
  fs.truncateSync(big, GB); // sparse: the disk is not what is measured
  const rssOf = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${srv.child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  const base = rssOf();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf())), 20);
  const t0 = performance.now();
  const res = await fetch(`${srv.base}/v1/sessions/${s.session_id}/files/content?path=big.bin`);
  let got = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    got += value.length;
  }
  const secs = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  if (got !== GB) throw new Error(`download: ${got} bytes`);
  const growth = (peak - base) / 1024 ** 2;
  console.log(
    `1 GB download: ${fmt(secs, 2)} s (${fmt(GB / 1024 ** 2 / secs, 0)} MB/s); server RSS ${fmt(base / 1024 ** 2, 0)} MB before, peak ${fmt(peak / 1024 ** 2, 0)} MB: growth ${fmt(growth, 1)} MB`,
  );
  rows.push({
    name: 'files: 1 GB download, server RSS growth',
    figures: `${fmt(growth, 1)} MB (${fmt(GB / 1024 ** 2 / secs, 0)} MB/s)`,
    goal: '< 50 MB',
    ok: growth < 50,
  });
  fs.rmSync(big, { force: true });
  await srv.stop();
}

if (want('list')) {
  const N = Number(process.env.BENCH_LIST_SESSIONS ?? 10_000);
  console.log(`\n--- list: first page of ${N} sessions through the API vs SDK listSessions({dir, limit: 50}) ---`);
  // Seeded through the app's own storage (rows) and the CLI's layout (transcripts), then served.
  const dirs = { dataDir: path.join(root, 'list-data'), workspace, configDir };
  const app = await buildApp(
    loadConfig({
      DATA_DIR: dirs.dataDir,
      WORKSPACE_ROOT: workspace,
      CLAUDE_CONFIG_DIR: configDir,
      MODEL_BACKEND: 'offline',
      LOG_LEVEL: 'warn',
      PREWARM_SPARES: '0',
    }),
    { offlineModel: model },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const seed = await api(base, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: 'bench-list' });
  const template = fs.readFileSync(seed.transcript.path, 'utf8');
  const t0 = performance.now();
  const now = Date.now();
  const batch: SessionRow[] = [];
  for (let i = 1; i < N; i++) {
    const id = randomUUID();
    fs.writeFileSync(transcriptPath(configDir, seed.cwd, id), template.replaceAll(seed.session_id, id));
    batch.push(benchRow(id, i, 'bench-list', seed.cwd, now - N + i));
    if (batch.length === 500 || i === N - 1) await app.internals.storage.db.insertInto('sessions').values(batch.splice(0)).execute();
  }
  console.log(`seeded ${N} sessions (rows + transcripts of ${template.length} bytes each) in ${fmt((performance.now() - t0) / 1000)} s`);
  const timed = async (n: number, fn: () => Promise<void>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t1 = performance.now();
      await fn();
      out.push(performance.now() - t1);
    }
    return out;
  };
  const apiMs = await timed(30, async () => {
    if ((await api(base, 'GET', '/v1/sessions?limit=50')).sessions.length !== 50) throw new Error('short page');
  });
  const filtered = await timed(30, async () => {
    await api(base, 'GET', '/v1/sessions?limit=50&project=bench-list&q=bench%2099');
  });
  const sdkMs = await timed(3, async () => {
    if ((await listSessions({ dir: seed.cwd, limit: 50 })).length !== 50) throw new Error('SDK short page');
  });
  await app.close();
  console.log(`API first page (50)       median ${fmt(median(apiMs))} ms  p90 ${fmt(p90(apiMs))} ms`);
  console.log(`API filtered page (q=...) median ${fmt(median(filtered))} ms  p90 ${fmt(p90(filtered))} ms`);
  console.log(`SDK listSessions limit 50 median ${fmt(median(sdkMs))} ms`);
  rows.push({
    name: `list first page of ${N} sessions`,
    figures: `API median ${fmt(median(apiMs))} ms (filtered ${fmt(median(filtered))} ms); SDK listSessions({dir, limit: 50}) median ${fmt(median(sdkMs))} ms; x${fmt(median(sdkMs) / median(apiMs), 0)} faster`,
    goal: '< 20 ms',
    ok: median(apiMs) < 20,
  });
}

if (want('pglist')) {
  const N = Number(process.env.BENCH_PG_SESSIONS ?? 100_000);
  console.log(`\n--- list and get with ${N} sessions in PostgreSQL ---`);
  const pgdb = await freshDatabase('css_bench_list');
  const app = await buildApp(
    loadConfig({
      DATA_DIR: path.join(root, 'pglist-data'),
      DATABASE_URL: pgdb.url,
      WORKSPACE_ROOT: workspace,
      CLAUDE_CONFIG_DIR: configDir,
      MODEL_BACKEND: 'offline',
      LOG_LEVEL: 'warn',
      PREWARM_SPARES: '0',
    }),
    { offlineModel: model },
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const seed = await api(base, 'POST', '/v1/sessions', { prompt: 'Remember: my favorite color is blue', project: 'bench-pg' });
  const t0 = performance.now();
  const now = Date.now();
  const ids: string[] = [];
  const batch: SessionRow[] = [];
  for (let i = 1; i < N; i++) {
    const id = randomUUID();
    ids.push(id);
    batch.push(benchRow(id, i, `bench-pg-${i % 10}`, seed.cwd, now - N + i));
    if (batch.length === 2000 || i === N - 1) await app.internals.storage.db.insertInto('sessions').values(batch.splice(0)).execute();
  }
  await sql`analyze sessions`.execute(app.internals.storage.db);
  console.log(`seeded ${N} session rows in ${fmt((performance.now() - t0) / 1000)} s`);
  const timed = async (n: number, fn: (i: number) => Promise<void>) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t1 = performance.now();
      await fn(i);
      out.push(performance.now() - t1);
    }
    return out;
  };
  const first = await timed(50, async () => {
    if ((await api(base, 'GET', '/v1/sessions?limit=50')).sessions.length !== 50) throw new Error('short page');
  });
  const byProject = await timed(50, async () => {
    if ((await api(base, 'GET', '/v1/sessions?limit=50&project=bench-pg-3')).sessions.length !== 50) throw new Error('short page');
  });
  const searched = await timed(50, async () => {
    await api(base, 'GET', '/v1/sessions?limit=50&q=bench%209999');
  });
  const got = await timed(50, async (i) => {
    const id = ids[(i * 7919) % ids.length]!;
    if ((await api(base, 'GET', `/v1/sessions/${id}`)).session_id !== id) throw new Error('wrong session');
  });
  await app.close();
  await pgdb.drop();
  console.log(`first page (50)            median ${fmt(median(first))} ms  p90 ${fmt(p90(first))} ms`);
  console.log(`page of one project        median ${fmt(median(byProject))} ms  p90 ${fmt(p90(byProject))} ms`);
  console.log(`page of a text search (q)  median ${fmt(median(searched))} ms  p90 ${fmt(p90(searched))} ms`);
  console.log(`get one session            median ${fmt(median(got))} ms  p90 ${fmt(p90(got))} ms`);
  rows.push({
    name: `PostgreSQL, ${N} sessions: list and get`,
    figures: `first page median ${fmt(median(first))} ms; filtered by project ${fmt(median(byProject))} ms; text search ${fmt(median(searched))} ms; get ${fmt(median(got))} ms`,
    goal: '< 20 ms (first page, filtered page, get)',
    ok: median(first) < 20 && median(byProject) < 20 && median(got) < 20,
  });
}

if (want('load')) {
  const rounds = Math.max(1, Number(process.env.BENCH_LOAD_ROUNDS ?? 3));
  rows.push(...(await compareLoad(model.url, { name: 'new sessions', sessions: 16, turns: 4, clients: 4 }, rounds)));
  rows.push(...(await compareLoad(model.url, { name: 'warm turns', sessions: 4, turns: 26, clients: 4, warmup: true }, rounds)));
  rows.push(await knee(model.url, Number(process.env.BENCH_KNEE_TURNS ?? 10)));
}

// The warm-turn comparison alone (the CPU per turn figures), for a quick look at a change.
if (sections.includes('loadwarm')) {
  const rounds = Math.max(1, Number(process.env.BENCH_LOAD_ROUNDS ?? 3));
  // BENCH_LOADWARM_TURNS: more turns a session, to see the steady state past the JIT's warm-up.
  const turns = Math.max(2, Number(process.env.BENCH_LOADWARM_TURNS ?? 26));
  rows.push(...(await compareLoad(model.url, { name: 'warm turns', sessions: 4, turns, clients: 4, warmup: true }, rounds)));
}

if (want('memory')) rows.push(...(await memoryBench(model.url)));

if (want('soak')) rows.push(...(await soakBench(model.url)));

if (want('fanout')) rows.push(...(await fanoutBench(model.url, rawOptions, workspace)));

if (want('load50')) rows.push((await loadBench(model.url)).row);

if (want('storage')) rows.push(...(await storageBench(model.url, root)));

if (want('replicas')) {
  const one = await loadBench(model.url, { replicas: 1 });
  const two = await loadBench(model.url, { replicas: 2 });
  rows.push(one.row, two.row);
  rows.push({
    name: '2 replicas vs 1 (same machine, one PostgreSQL)',
    figures: `throughput x${fmt(two.turnsPerSecond / one.turnsPerSecond, 2)}; p50 x${fmt(two.p50 / one.p50, 2)}, p90 x${fmt(two.p90 / one.p90, 2)}`,
  });
}

await model.close();
fs.rmSync(root, { recursive: true, force: true });
printRows(rows);
