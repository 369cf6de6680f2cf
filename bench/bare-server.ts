/**
 * A reference for the breakdown section, not a product: the least an HTTP wrapper of our runner
 * can be. Fastify with no logger, hooks, schema, auth, rate limit or database, one route that runs
 * a turn on a warm process and answers its result. As its own process, it measures what the HTTP
 * hop and a second process cost by themselves on this machine.
 */
import path from 'node:path';
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
  maxWarm: 8,
  spares: 0,
});
const started = new Set<string>();
const app = Fastify({ logger: false });
app.post('/turn', async (req) => {
  const { session, cwd, prompt } = req.body as { session: string; cwd: string; prompt: string };
  const o = await runner.runTurn({
    sessionId: session,
    cwd,
    prompt,
    resume: started.has(session),
    permissionMode: 'default',
    model: null,
    options: null,
    title: null,
    onMessage: () => {},
  });
  if (o.status !== 'succeeded') throw new Error(`turn ${o.status}`);
  started.add(session);
  return { result: o.result };
});
process.on('SIGTERM', () => void runner.closeAll().then(() => process.exit(0)));
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' });
process.stdout.write('ready\n');
