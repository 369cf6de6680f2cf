/**
 * @module server
 * The process: read config, build the app, listen, and stop gracefully on SIGTERM/SIGINT
 * (every CLI process closed, the database closed) before exiting.
 */
import { loadConfig, type Config } from './config.js';
import { buildApp } from './app.js';

/** Ends the process on a start-up error with one line that says what is wrong (the stack only when debugging). */
function refuse(what: string, err: unknown): never {
  const debug = /^(debug|trace)$/.test(process.env.LOG_LEVEL ?? '');
  process.stderr.write(`claude-session-server: ${what}: ${err instanceof Error ? (debug ? err.stack : err.message) : String(err)}\n`);
  process.exit(1);
}

let config: Config;
try {
  config = loadConfig();
} catch (err) {
  refuse('invalid configuration', err);
}
const app = await buildApp(config).catch((err: unknown) => refuse('could not start', err));

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  app.log.info({ signal }, 'shutting down');
  const force = setTimeout(() => {
    app.log.error('shutdown took too long; exiting');
    process.exit(1);
  }, config.shutdownGraceMs + 10_000);
  force.unref();
  try {
    await app.close();
    process.exit(0);
  } catch (err) {
    app.log.error({ err }, 'error while shutting down');
    process.exit(1);
  }
}
process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

try {
  await app.listen({ host: config.host, port: config.port });
  app.log.info(
    { user_mode: app.internals.singleUser ? 'single-user (local)' : 'API keys', workspace: config.workspaceRoot, config_dir: config.claudeConfigDir },
    'ready',
  );
} catch (err) {
  app.log.error({ err }, 'could not start');
  process.exit(1);
}
