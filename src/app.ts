/**
 * @module app
 * `buildApp(config, deps)` composes the whole server: storage, the model endpoint, the Claude
 * adapter, services, plugins, routes and the one error handler. Tests build it the same way
 * the process does; `server.ts` only adds listening and signals.
 * Over 400 lines for now: moving start-up recovery and cluster routing out, so that it only
 * composes, is issue 14, step 2 (begun: errors and rate limit are plugin files).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config.js';
import { bounded } from './clock.js';
import { loadText } from './storage/text.js';
import { startLogUpkeep, type LogUpkeep } from './turns/log-upkeep.js';
import { AppError, ErrorBodySchema } from './errors.js';
import { addSharedSchema, validatorCompiler } from './plugins/validation.js';
import { jsonClientError, lowerUuids, nulAt, REQUEST_ID } from './plugins/request-guards.js';
import swaggerPlugin from './plugins/swagger.js';
import webPage from './plugins/web-page.js';
import { openStorage, type Storage } from './storage/db.js';
import { createSessionRepository } from './storage/sessions-repo.js';
import { createTurnRepository } from './storage/turns-repo.js';
import { createEventRepository } from './storage/events-repo.js';
import { startOfflineModel, type OfflineModel } from './offline-model/server.js';
import { createClaudeRunner, sweepTmpDir, type ClaudeRunner, type RunnerOptions } from './claude/runner/index.js';
import { createTranscriptStore } from './storage/transcript-store.js';
import { createProcessRegistry, reapOrphans } from './claude/processes.js';
import { transcriptPath } from './claude/paths.js';
import { bindConfigDir, claudeSessionFunctions } from './claude/sessions.js';
import { claudeVersions } from './claude/version.js';
import { createWorkspace, userFolderName } from './workspace/workspace.js';
import { decideIsolation, fetchAllowed, isolationOptions, secretEnvNames } from './claude/sandbox.js';
import { createRunGuard, createTurnService } from './turns/service.js';
import { createTurnEngine, type TurnEngine } from './turns/engine/index.js';
import { createEventLog, createSharedEventLog } from './turns/events.js';
import { createLocalCluster, createPgCluster, type Cluster } from './cluster/cluster.js';
import { createLeaseRepository } from './storage/leases-repo.js';
import type { StreamSettings } from './turns/respond.js';
import { presentTurn } from './turns/present.js';
import { createMetrics } from './metrics/metrics.js';
import { metricsRoutes } from './metrics/routes.js';
import { createSessionService } from './sessions/service.js';
import { SessionSchema } from './sessions/schemas.js';
import { TurnSchema } from './turns/schemas.js';
import { sessionRoutes } from './sessions/routes.js';
import { turnRoutes } from './turns/routes.js';
import { healthRoutes } from './health/routes.js';
import { createCallerResolver, isPublicRoute, LOCAL_USER } from './auth/caller.js';
import { createKeyAuth } from './auth/keys.js';
import { createKeyRepository } from './storage/keys-repo.js';
import { createPermissionRepository } from './storage/permissions-repo.js';
import { createApprovals } from './permissions/service.js';
import { permissionRoutes } from './permissions/routes.js';
import { registerRateLimit } from './plugins/rate-limit.js';
import { frameworkError, registerErrorHandlers } from './plugins/errors.js';
import { isLoopback } from './config.js';
import type { App } from './types.js';

/** The server's own folder (its code and node_modules): no sandboxed command reads it. */
const SERVER_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

export const SERVER_VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface AppDeps {
  /** A running offline model to use instead of starting one (tests share one). */
  offlineModel?: OfflineModel;
}

/** What the process needs beyond the Fastify instance. */
export interface AppInternals {
  storage: Storage;
  runner: ClaudeRunner;
  engine: TurnEngine;
  /** The event log's compaction and retention sweep. */
  logUpkeep: LogUpkeep;
  /** No API keys, bound to loopback: every request acts as the local user. */
  singleUser: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    internals: AppInternals;
  }
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<App> {
  const app = Fastify({
    // A request that is not received whole in time (a body that never ends) is answered 408 and
    // dropped; Node checks open requests a few times per timeout. Responses are not bound by it.
    serverFactory: (handler) =>
      http.createServer({ requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(config.requestTimeoutMs / 4))) }, handler),
    clientErrorHandler: jsonClientError(config.requestTimeoutMs),
    logger: { level: config.logLevel },
    bodyLimit: config.bodyLimit,
    // A client's own X-Request-Id is kept when it is a plain token: it is echoed in headers and
    // logs, so anything longer or stranger is replaced by a new id.
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // While shutting down, requests get this server's own 503 (onRequest below), not Fastify's.
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false } },
    // Errors the router raises before any route runs (a malformed URL, a path parameter over
    // maxParamLength) get the same JSON error shape as everything else.
    frameworkErrors: frameworkError,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  for (const s of [ErrorBodySchema, SessionSchema, TurnSchema] as unknown as Array<{ $id: string }>) {
    app.addSchema(s);
    addSharedSchema(s);
  }

  // The SDK's session functions read CLAUDE_CONFIG_DIR from this process (DESIGN.md).
  bindConfigDir(config.claudeConfigDir);
  fs.mkdirSync(path.join(config.claudeConfigDir, 'projects'), { recursive: true });
  const tmpDir = path.join(config.dataDir, 'tmp');

  // A server killed with SIGKILL leaves its CLI processes running their turns: end them first.
  const pidDir = path.join(config.dataDir, 'pids');
  const reaped = await reapOrphans(pidDir, config.claudeConfigDir);
  if (reaped > 0) app.log.warn({ processes: reaped }, 'ended CLI processes left running by a previous run');
  const processes = createProcessRegistry(
    pidDir,
    (line) => app.log.debug({ cli: line }, 'cli stderr'),
    (asked, actual) => app.log.error({ asked, actual }, "a CLI started in another folder than its session's (a link swapped in?): it was ended before it ran anything"),
    config.claudeConfigDir,
  );

  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, log: app.log });
  const sessionsRepo = createSessionRepository(storage.db);
  const turnsRepo = createTurnRepository(storage.db);
  const keyAuth = createKeyAuth({ apiKeys: config.apiKeys, adminUsers: config.adminUsers, keys: createKeyRepository(storage.db) });
  const loopback = isLoopback(config.host);
  if (!loopback && !(await keyAuth.anyKeys())) {
    await storage.close();
    throw new Error(
      `refusing to start: HOST=${config.host} is not a loopback address and no API key is configured. ` +
        'Set API_KEYS=user:key (or make keys with "npm run keys -- create --user <id>"), or bind to 127.0.0.1.',
    );
  }
  const callers = createCallerResolver({ auth: keyAuth, loopback });
  const singleUser = await callers.singleUser();
  if (singleUser) app.log.warn(`single-user mode: no API keys, bound to ${config.host}; every request acts as "${LOCAL_USER}"`);
  fs.mkdirSync(config.workspaceRoot, { recursive: true });
  // Tenant isolation: the CLI's sandbox and file-tool limits, decided once (a required sandbox
  // that cannot run stops the start here, with the fix).
  let isolation: ReturnType<typeof decideIsolation>;
  try {
    isolation = decideIsolation({
      mode: config.sandbox,
      singleUser,
      domains: config.sandboxDomains,
      network: config.sandboxNetwork,
      readPaths: config.sandboxReadPaths,
      secretEnv: secretEnvNames(process.env),
      hiddenPaths: [config.dataDir, config.claudeConfigDir, config.workspaceRoot, SERVER_ROOT, os.homedir()].map((p) => (fs.existsSync(p) ? fs.realpathSync.native(p) : p)),
    });
  } catch (err) {
    await storage.close();
    throw err;
  }
  for (const w of isolation.warnings) app.log.warn(w);
  if (isolation.state.enabled) app.log.info({ network: isolation.state.allowed_domains, read_paths: isolation.state.read_paths }, "tool isolation: Bash runs in the CLI's sandbox; file tools stay in each session's folder");
  const permissionsRepo = createPermissionRepository(storage.db);
  // Turns that wait for a tool approval survive a restart; any other running turn died with it.
  const waiting = await permissionsRepo.allPending();
  // This process's id as a runner of turns. The previous process on this DATA_DIR is dead (we
  // replaced it): its turns failed. Other replicas' turns in a shared PostgreSQL are theirs.
  const runnerId = randomUUID();
  const idFile = path.join(config.dataDir, 'runner-id');
  const previousRunner = fs.existsSync(idFile) ? fs.readFileSync(idFile, 'utf8').trim() : null;
  fs.writeFileSync(idFile, runnerId);
  const abandoned = await turnsRepo.failRunning(Date.now(), 'SERVER_RESTARTED', 'the server stopped while this turn was running', {
    except: [...new Set(waiting.map((w) => w.turn_id))],
    ...(storage.dialect === 'postgres' ? { runners: [previousRunner, null] } : {}),
  });
  if (abandoned.length > 0) app.log.warn({ turns: abandoned.length }, 'marked turns left running by a previous run as failed');
  sweepTmpDir(tmpDir);

  const metrics = createMetrics();
  let offline: OfflineModel | undefined = deps.offlineModel;
  const ownsOffline = config.modelBackend === 'offline' && !offline;
  if (config.modelBackend === 'offline') {
    offline ??= await startOfflineModel();
    const why = config.modelBackendAuto ? 'no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN is set (MODEL_BACKEND=auto)' : 'MODEL_BACKEND=offline';
    app.log.warn({ url: offline.url }, `OFFLINE MODEL: ${why}; sessions talk to the built-in scripted model, not to Claude`);
  } else if (!config.anthropicApiKey && !config.anthropicAuthToken) {
    app.log.warn('MODEL_BACKEND=anthropic with no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN: the CLI can only use a login of its own under CLAUDE_CONFIG_DIR; without one every turn fails');
  }

  // TRANSCRIPT_STORE=database: transcripts are mirrored into PostgreSQL, so that a replica whose
  // disk never saw a session can resume it.
  const transcripts = config.transcriptStore === 'database' ? createTranscriptStore(storage.db, storage.dialect) : null;
  const claudeSessions = claudeSessionFunctions(config.claudeConfigDir, transcripts ? { store: transcripts as unknown as NonNullable<Parameters<typeof claudeSessionFunctions>[1]>['store'], has: (id) => transcripts.has(id), entriesContaining: (key, text) => transcripts.entriesContaining(key, text) } : undefined);
  const versions = await claudeVersions();
  const workspace = createWorkspace(config.workspaceRoot);
  const guard = createRunGuard({
    workspace,
    multiUser: async () => !(await callers.singleUser()),
    sandboxMissing: isolation.state.mode === 'auto' && !isolation.state.enabled ? isolation.state.reason : null,
  });
  /** The turn running in each session: written by the engine, read by the tool-approval hook. */
  const runningTurns = new Map<string, string>();
  const runner = createClaudeRunner({
    configDir: config.claudeConfigDir,
    tmpDir,
    model:
      config.modelBackend === 'offline'
        ? { backend: 'offline', baseUrl: offline!.url }
        : { backend: 'anthropic', baseUrl: config.anthropicBaseUrl, apiKey: config.anthropicApiKey, authToken: config.anthropicAuthToken },
    sandboxOptIn: config.sandboxOptIn,
    isolation: isolationOptions(isolation.policy),
    beforeStart: (spec) => (spec.userId === undefined ? undefined : guard({ session_id: spec.sessionId, user_id: spec.userId, cwd: spec.cwd })),
    turnTimeoutMs: config.turnTimeoutMs,
    warmIdleMs: config.warmIdleMs,
    maxWarm: config.maxWarmSessions,
    spares: config.prewarmSpares,
    interruptGraceMs: config.interruptGraceMs,
    maxBudgetUsd: config.maxTurnBudgetUsd,
    ...(transcripts ? { sessionStore: transcripts as unknown as NonNullable<RunnerOptions['sessionStore']>, storedEntriesContaining: transcripts.entriesContaining } : {}),
    verbatimPrompts: !config.promptExpansion,
    processes,
    onPreToolUse: async (sessionId, input) =>
      (await approvals.preToolUse({
        sessionId,
        turnId: runningTurns.get(sessionId) ?? '',
        toolName: input.tool_name,
        toolUseId: input.tool_use_id,
        input: (input.tool_input ?? {}) as Record<string, unknown>,
        mode: input.permission_mode,
      })),
    canUseTool: (sessionId) => async (toolName, input, ctx) =>
      approvals.canUseTool({
        sessionId,
        turnId: runningTurns.get(sessionId) ?? '',
        toolName,
        toolUseId: ctx.toolUseID,
        input,
        mode: undefined,
        suggestions: ctx.suggestions ?? [],
        signal: ctx.signal,
      }),
    onEvent: (e) => {
      app.log.info(e, 'runner');
      if (e.type === 'spare_claimed') metrics.spareClaim('claimed');
      if (e.type === 'spare_claim_refused') metrics.spareClaim('refused');
    },
  });
  // Sessions keep their absolute folder, and the transcript store keys them by it: every replica
  // (and every restart) must use the same WORKSPACE_ROOT path, or sessions cannot resume here.
  const recent = await sessionsRepo.latest();
  if (recent && workspace.projectOf(recent.cwd) === null) {
    app.log.error(
      { session_id: recent.session_id, cwd: recent.cwd, workspace_root: workspace.root },
      'sessions in the database live outside this WORKSPACE_ROOT: every replica must use the same WORKSPACE_ROOT path as the one sessions were created under',
    );
  }
  // With PostgreSQL other replicas may share the database: leases say who runs a session, and
  // the event log is numbered where it is written. With SQLite this process is the only one.
  const cluster: Cluster =
    storage.dialect === 'postgres' && config.databaseUrl
      ? createPgCluster({ leases: createLeaseRepository(storage.db), databaseUrl: config.databaseUrl, replicaId: runnerId, leaseMs: config.replicaLeaseMs, log: app.log })
      : createLocalCluster(runnerId);
  if (previousRunner) await cluster.inherit(previousRunner);
  const eventRepo = createEventRepository(storage.db);
  // An ended turn's result is read back from its row (events store it once, not three times).
  const turnResults = async (ids: string[]) => new Map([...(await turnsRepo.results(ids))].map(([id, r]) => [id, loadText(r)]));
  const events = cluster.shared ? createSharedEventLog(eventRepo, turnResults, (s) => cluster.publish({ k: 'events', s }), app.log) : createEventLog(eventRepo, turnResults, app.log);
  const logUpkeep = startLogUpkeep({ repo: eventRepo, partialsKeepMs: config.partialEventsKeepMs, retentionDays: config.eventRetentionDays, log: app.log });
  // Streams of those turns end: their error, final state and `done` join the event log.
  for (const t of abandoned) {
    const shown = presentTurn(t);
    await events.append(t.session_id, t.turn_id, 'error', shown.error);
    await events.append(t.session_id, t.turn_id, 'turn', shown);
    await events.append(t.session_id, t.turn_id, 'done', shown);
  }
  const approvals = createApprovals({
    repo: permissionsRepo,
    sessions: sessionsRepo,
    events,
    timeoutMs: config.permissionTimeoutMs,
    log: app.log,
    onSettled: (s, tu) => cluster.publish({ k: 'settled', s, tu }),
    ...(isolation.policy.fetchDomains
      ? {
          fetchAllowed: (url: unknown) => fetchAllowed(url, isolation.policy.allowedDomains),
          fetchRefusal: `WebFetch may only reach the domains this server allows (SANDBOX_NETWORK): ${isolation.policy.allowedDomains.join(', ')}.`,
        }
      : {}),
  });
  const engine = createTurnEngine({
    sessions: sessionsRepo,
    turns: turnsRepo,
    events,
    runner,
    metrics,
    log: app.log,
    limits: { maxConcurrent: config.maxConcurrentTurns, maxQueued: config.maxQueuedTurns, userMaxConcurrent: config.userMaxConcurrentTurns },
    runningTurns,
    approvals,
    transcriptExists: async (s) => fs.existsSync(transcriptPath(config.claudeConfigDir, s.cwd, s.session_id)) || (transcripts ? await transcripts.has(s.session_id) : false),
    // With the store, a transcript only this disk has goes into it before a resume (the CLI resumes from the store).
    ...(transcripts ? { prepareResume: async (s: { session_id: string; cwd: string }) => void (await claudeSessions.ensureShared(s.session_id, s.cwd)) } : {}),
    runnerId,
    cluster,
    // A tag set before the transcript existed is written to it now, so a terminal user sees it.
    onStarted: async (s) => {
      if (s.tag) await claudeSessions.tag(s.session_id, s.cwd, s.tag).catch((err) => app.log.warn({ err }, 'could not tag the transcript'));
    },
  });
  const turnService = createTurnService({
    config,
    sessions: sessionsRepo,
    turns: turnsRepo,
    engine,
    workspace,
    guard,
    ...(transcripts ? { storedElsewhere: (id: string) => transcripts.has(id) } : {}) });
  /**
   * What this replica holds of a purged session, once its process here has ended (a CLI writes its
   * transcript as it closes) and the turn that was running, wherever it ran, has its done event:
   * events (written or not yet), rows, stored and local transcripts, file checkpoints. The replica
   * that purges runs it, and so does every other replica told of the purge (what its own process
   * handed over meanwhile goes too).
   */
  const purgeHere = async (id: string, cwd: string, endedTurnId?: string) => {
    await bounded(runner.ended(id), config.interruptGraceMs + 10_000);
    // A turn ended on another replica writes its last events just after its row: wait for its done.
    for (let i = 0; endedTurnId && i < 100 && (await events.doneSeq(id, endedTurnId)) === null; i++) await new Promise((r) => setTimeout(r, 50));
    await events.drop(id);
    await transcripts?.purge(id);
    await sessionsRepo.purge(id);
    await storage.forgetDeleted();
    await claudeSessions.removeLocal(id, cwd);
    await claudeSessions.removeSideFiles(id);
  };
  const sessionService = createSessionService({ config, sessions: sessionsRepo, turns: turnsRepo, turnService, engine, claude: claudeSessions, workspace, log: app.log, storedElsewhere: transcripts ? (id: string) => transcripts.has(id) : undefined,
    purgeHere,
    onPurged: (s, cwd) => cluster.publish({ k: 'purged', s, cwd }) });
  let sse = 0;
  const stream: StreamSettings = { events, heartbeatMs: config.sseHeartbeatMs, stallMs: config.sseStallMs, onOpen: () => sse++, onClose: () => sse-- };
  metrics.observe(() => {
    const e = engine.stats();
    const r = runner.stats();
    const c = cluster.state();
    return { running: e.running, waiting: e.waiting, queued: e.queued, warm: r.warm, busy: r.busy, spares: r.spares, sse, leases: c.leases, listening: c.listening ? 1 : 0 };
  });

  app.decorate('internals', { storage, runner, engine, logUpkeep, singleUser });
  app.decorateRequest('caller', null as never);
  let closing = false;
  app.addHook('onRequest', async (req) => {
    if (closing && req.routeOptions.url !== '/health') throw new AppError('SHUTTING_DOWN', 'the server is shutting down; try again shortly', { retryAfter: 5 });
    req.caller = isPublicRoute(req.routeOptions.url) ? { userId: '', admin: false } : await callers.resolve(req);
  });
  // Per key (per user) request rate, checked once the caller is known.
  await registerRateLimit(app, { perMinute: config.rateLimitPerMinute, isPublic: isPublicRoute });
  // Routes whose body is all optional accept an empty request body as {}.
  // (The hooks that need no await take a callback: Fastify then goes on in the same step.)
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.body === undefined && req.routeOptions.schema?.body) req.body = {};
    // Ids are the SDK's lowercase UUIDs; one sent in capitals (as Swift's UUID prints them) names the same.
    lowerUuids(req.params);
    lowerUuids(req.body);
    const nul = nulAt(req.body, 'body') ?? nulAt(req.query, 'query') ?? nulAt(req.params, 'params');
    if (nul) return done(new AppError('INVALID_REQUEST', `${nul} contains a NUL character (U+0000), which this server does not accept in any text`));
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    reply.header('x-request-id', req.id);
    // While shutting down, let no kept-alive connection hold the listener open.
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  registerErrorHandlers(app);

  await app.register(swaggerPlugin, { version: SERVER_VERSION });
  await app.register(healthRoutes, {
    storage,
    replica: () => cluster.state(),
    shuttingDown: () => closing,
    facts: {
      version: SERVER_VERSION,
      sdkVersion: versions.sdk,
      cliVersion: versions.cli,
      modelBackend: config.modelBackend,
      configDir: config.claudeConfigDir,
      workspaceRoot: workspace.root,
      defaultFolder: singleUser ? path.join(workspace.root, userFolderName(LOCAL_USER)) : workspace.root,
      dataDir: config.dataDir,
      sandbox: isolation.state,
    },
  });
  await app.register(sessionRoutes, { sessions: sessionService, turns: turnService, stream });
  await app.register(turnRoutes, { turns: turnService, sessions: sessionService, stream });
  await app.register(permissionRoutes, { approvals });
  await app.register(webPage);
  await app.register(metricsRoutes, { metrics });

  // Before the listener closes: refuse new turns (503), give running ones the grace period,
  // then stop them, so that no CLI process outlives the server and in-flight requests end.
  app.addHook('preClose', async () => {
    closing = true;
    await engine.stop(config.shutdownGraceMs);
    await cluster.stop();
  });
  app.addHook('onClose', async () => {
    approvals.stop();
    await logUpkeep.stop();
    await events.flush();
    // The CLIs' last entries (their cost totals, written as they end) reach the store first.
    await transcripts?.settled();
    await storage.close();
    if (ownsOffline) await offline!.close();
  });
  // Turns queued before a restart run now.
  app.addHook('onReady', async () => {
    const pending = await approvals.start();
    await engine.replica.resumeWaiting(pending.map((p) => ({ turnId: p.turn_id, toolUseId: p.tool_use_id })));
    await engine.replica.resumeQueued();
    cluster.onMessage((m) => {
      if (m.k === 'events') events.poke(m.s);
      else if (m.k === 'purged') {
        // This replica's warm process and TMPDIR of the session go too (release), then what it holds.
        engine.release(m.s);
        purgeHere(m.s, m.cwd).catch((err: unknown) => app.log.warn({ err }, 'could not remove a purged session here'));
      }
      else if (m.k === 'settled') void approvals.recheck(m.s, m.tu).catch((err: unknown) => app.log.warn({ err }, 'could not read a decided permission request'));
      else engine.replica.onMessage(m);
    });
    await cluster.start({
      ...engine.replica,
      resync: () => {
        engine.replica.resync();
        events.pokeAll();
      },
    });
  });
  return app;
}
