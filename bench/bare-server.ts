/**
 * A reference for the breakdown and load sections, not a product: the least an HTTP wrapper of
 * our runner can be. Fastify with no logger, hooks, schema, auth, rate limit or database: `/turn`
 * runs a turn on the session's process (warm, or resumed) and answers its result, `/new` starts a
 * session on a prewarmed spare when one is ready. Under load it keeps the bounds the server is
 * given: at most `BARE_MAX_CONCURRENT` turns at once (the rest wait in line), `BARE_MAX_WARM`
 * warm processes, `BARE_SPARES` spares. As its own process, it measures what the HTTP hop and a
 * second process cost by themselves on this machine.
 */
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import { createClaudeRunner } from '../src/claude/runner/index.js';
import { benchIsolation } from './server.js';

const runner = createClaudeRunner({
  configDir: process.env.CLAUDE_CONFIG_DIR!,
  tmpDir: path.join(process.env.BARE_ROOT!, 'tmp'),
  model: { backend: 'offline', baseUrl: process.env.ANTHROPIC_BASE_URL! },
  sandboxOptIn: false,
  isolation: benchIsolation([process.env.BARE_ROOT!, process.env.CLAUDE_CONFIG_DIR!]),
  turnTimeoutMs: 600_000,
  warmIdleMs: 300_000,
  maxWarm: Number(process.env.BARE_MAX_WARM ?? 8),
  spares: Number(process.env.BARE_SPARES ?? 0),
});
const maxConcurrent = Number(process.env.BARE_MAX_CONCURRENT ?? 1_000);
let running = 0;
const line: Array<() => void> = [];

async function run(session: string, cwd: string, prompt: string, resume: boolean) {
  if (running < maxConcurrent) running++;
  else await new Promise<void>((r) => line.push(r));
  try {
    const o = await runner.runTurn({
      sessionId: session,
      cwd,
      prompt,
      resume,
      permissionMode: 'default',
      model: null,
      options: null,
      title: null,
      onMessage: () => {},
    });
    if (o.status !== 'succeeded') throw new Error(`turn ${o.status}`);
    started.add(session);
    return { session_id: session, result: o.result };
  } finally {
    const next = line.shift();
    if (next) next();
    else running--;
  }
}

const started = new Set<string>();
const app = Fastify({ logger: false });
app.post('/turn', async (req) => {
  const { session, cwd, prompt } = req.body as { session: string; cwd: string; prompt: string };
  return run(session, cwd, prompt, started.has(session));
});
app.post('/new', async (req) => {
  const { cwd, prompt } = req.body as { cwd: string; prompt: string };
  return run(runner.reserveSpare() ?? randomUUID(), cwd, prompt, false);
});
process.on('SIGTERM', () => void runner.closeAll().then(() => process.exit(0)));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('ready\n');
