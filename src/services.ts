/**
 * @module services
 * Builds every service of the server once, in dependency order (nothing refers to something
 * built later): storage and who may call, tenant isolation, the model endpoint, the replicas'
 * cluster and the event log, tool approvals, the Claude runner, the turn engine, the session and
 * turn services. Start-up recovery (`recovery.ts`) runs where its inputs exist. `buildApp` puts
 * the result behind HTTP; `start` and `stop` are its lifecycle.
 * Over 300 lines on purpose: one function, so that the order services are built in reads top to
 * bottom in one place.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config.js';
import { isLoopback } from './config.js';
import { loadText } from './storage/text.js';
import { openStorage, type Storage } from './storage/db.js';
import { createSessionRepository } from './storage/sessions-repo.js';
import { createTurnRepository } from './storage/turns-repo.js';
import { createEventRepository } from './storage/events-repo.js';
import { createKeyRepository } from './storage/keys-repo.js';
import { createPermissionRepository } from './storage/permissions-repo.js';
import { createLeaseRepository } from './storage/leases-repo.js';
import { createTranscriptStore } from './storage/transcript-store.js';
import { startOfflineModel, type OfflineModel } from './offline-model/server.js';
import { createClaudeRunner, sweepTmpDir, type ClaudeRunner } from './claude/runner/index.js';
import { createProcessRegistry } from './claude/processes.js';
import { bindConfigDir, claudeSessionFunctions } from './claude/sessions.js';
import { claudeVersions } from './claude/version.js';
import { decideIsolation, fetchAllowed, isolationOptions, secretEnvNames, type SandboxState } from './claude/sandbox.js';
import { createWorkspace, type Workspaces } from './workspace/workspace.js';
import { createLocalCluster } from './cluster/local.js';
import { createPgCluster } from './cluster/postgres.js';
import type { Cluster } from './cluster/cluster.js';
import type { EventLog } from './events/log.js';
import { createEventLog } from './events/local.js';
import { createSharedEventLog } from './events/shared.js';
import { startLogUpkeep, type LogUpkeep } from './events/upkeep.js';
import { createCallerResolver, LOCAL_USER, type CallerResolver } from './auth/caller.js';
import { createKeyAuth } from './auth/keys.js';
import { createApprovals, type Approvals } from './permissions/service.js';
import { createRunGuard, createTurnService, type TurnService } from './turns/service.js';
import { createTurnEngine, type TurnEngine } from './turns/engine/index.js';
import { createSessionService, type SessionService } from './sessions/service.js';
import { createAgentService, type AgentService } from './agents/service.js';
import { createAgentRepository } from './storage/agents-repo.js';
import { createFileService, type FileService } from './files/service.js';
import { createFolderStates, createSnapshots } from './workspace/snapshots.js';
import { checkSharedVolume } from './workspace/volume.js';
import { createWebhookService, type WebhookService } from './webhooks/service.js';
import { tellingWebhooks } from './webhooks/events.js';
import type { WebhookEvent } from './webhooks/schemas.js';
import { createWebhookRepository } from './storage/webhooks-repo.js';
import { createPurgeHere } from './sessions/purge.js';
import { createMetrics, type Metrics } from './metrics/metrics.js';
import { checkWorkspaceRoot, endAbandonedStreams, endOrphans, failAbandoned, resumeTurns, takeOverDataDir } from './recovery.js';

/** The server's own folder (its code and node_modules): no sandboxed command reads it. */
const SERVER_ROOT = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');

export interface ServiceDeps {
  /** A running offline model to use instead of starting one (tests share one). */
  offlineModel?: OfflineModel;
}

export interface Services {
  storage: Storage;
  callers: CallerResolver;
  /** No API keys, bound to loopback: every request acts as the local user. */
  singleUser: boolean;
  isolation: SandboxState;
  workspace: Workspaces;
  versions: Awaited<ReturnType<typeof claudeVersions>>;
  metrics: Metrics;
  cluster: Cluster;
  events: EventLog;
  logUpkeep: LogUpkeep;
  approvals: Approvals;
  runner: ClaudeRunner;
  engine: TurnEngine;
  turnService: TurnService;
  sessionService: SessionService;
  agentService: AgentService;
  webhookService: WebhookService;
  fileService: FileService;
  /** Once the server is ready: resume what waits, join the other replicas. */
  start(): Promise<void>;
  /** Before the listener closes: running turns get `graceMs`, then stop; replicas are left. */
  stop(graceMs: number): Promise<void>;
  /** After it closed: writes what is in memory, closes storage and the model endpoint. */
  close(): Promise<void>;
}

export async function buildServices(config: Config, deps: ServiceDeps, log: FastifyBaseLogger): Promise<Services> {
  // The SDK's session functions read CLAUDE_CONFIG_DIR from this process, not from an option.
  bindConfigDir(config.claudeConfigDir);
  fs.mkdirSync(path.join(config.claudeConfigDir, 'projects'), { recursive: true });
  const tmpDir = path.join(config.dataDir, 'tmp');
  const pidDir = path.join(config.dataDir, 'pids');
  await endOrphans(pidDir, config.claudeConfigDir, log);
  const processes = createProcessRegistry(
    pidDir,
    (line) => log.debug({ cli: line }, 'cli stderr'),
    (asked, actual) =>
      log.error({ asked, actual }, "a CLI started in another folder than its session's (a link swapped in?): it was ended before it ran anything"),
    config.claudeConfigDir,
  );
  if (!processes.diesWithServer) {
    log.warn("util-linux's setpriv is missing: a CLI outlives a server killed with SIGKILL until the next start ends it (install util-linux)");
  }

  // Storage, and who may call.
  const storage = await openStorage({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, log });
  const sessionsRepo = createSessionRepository(storage.db);
  const turnsRepo = createTurnRepository(storage.db);
  const permissionsRepo = createPermissionRepository(storage.db);
  const eventRepo = createEventRepository(storage.db);
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
  if (singleUser) log.warn(`single-user mode: no API keys, bound to ${config.host}; every request acts as "${LOCAL_USER}"`);
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
      hiddenPaths: [config.dataDir, config.claudeConfigDir, config.workspaceRoot, SERVER_ROOT, os.homedir()].map((p) =>
        fs.existsSync(p) ? fs.realpathSync.native(p) : p,
      ),
    });
  } catch (err) {
    await storage.close();
    throw err;
  }
  for (const w of isolation.warnings) log.warn(w);
  if (isolation.state.enabled)
    log.info(
      { network: isolation.state.allowed_domains, read_paths: isolation.state.read_paths },
      "tool isolation: Bash runs in the CLI's sandbox; file tools stay in each session's folder",
    );

  // What the previous process on this DATA_DIR left running.
  const { runnerId, previousRunner } = takeOverDataDir(config.dataDir);
  const abandoned = await failAbandoned({ turns: turnsRepo, permissions: permissionsRepo, dialect: storage.dialect, previousRunner, log });
  sweepTmpDir(tmpDir);

  const metrics = createMetrics();
  let offline: OfflineModel | undefined = deps.offlineModel;
  const ownsOffline = config.modelBackend === 'offline' && !offline;
  if (config.modelBackend === 'offline') {
    offline ??= await startOfflineModel();
    const why = config.modelBackendAuto ? 'no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN is set (MODEL_BACKEND=auto)' : 'MODEL_BACKEND=offline';
    log.warn({ url: offline.url }, `OFFLINE MODEL: ${why}; sessions talk to the built-in scripted model, not to Claude`);
  } else if (!config.anthropicApiKey && !config.anthropicAuthToken) {
    log.warn(
      'MODEL_BACKEND=anthropic with no ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN: the CLI can only use a login of its own under CLAUDE_CONFIG_DIR; without one every turn fails',
    );
  }

  // TRANSCRIPT_STORE=database: transcripts are mirrored into PostgreSQL, so that a replica whose
  // disk never saw a session can resume it.
  const transcripts = config.transcriptStore === 'database' ? createTranscriptStore(storage.db, storage.dialect) : null;
  const claudeSessions = claudeSessionFunctions(
    config.claudeConfigDir,
    transcripts
      ? {
          store: transcripts as unknown as NonNullable<Parameters<typeof claudeSessionFunctions>[1]>['store'],
          has: (id) => transcripts.has(id),
          entriesContaining: (key, text) => transcripts.entriesContaining(key, text),
        }
      : undefined,
  );
  const versions = await claudeVersions();
  const workspace = createWorkspace(config.workspaceRoot);
  await checkWorkspaceRoot(sessionsRepo, workspace, log);

  // With PostgreSQL other replicas may share the database: leases say who runs a session, and
  // the event log is numbered where it is written. With SQLite this process is the only one.
  const cluster: Cluster =
    storage.dialect === 'postgres' && config.databaseUrl
      ? createPgCluster({
          leases: createLeaseRepository(storage.db),
          databaseUrl: config.databaseUrl,
          replicaId: runnerId,
          leaseMs: config.replicaLeaseMs,
          log,
        })
      : createLocalCluster(runnerId);
  if (cluster.shared && config.workspaceShared) {
    // A session's files must be where its next turn runs, whichever replica that is: one volume for all.
    try {
      await checkSharedVolume(config.workspaceRoot, (name, value) => cluster.claim(name, value));
    } catch (err) {
      await storage.close();
      throw err;
    }
  }
  if (previousRunner) await cluster.inherit(previousRunner);
  // An ended turn's result is read back from its row (events store it once, not three times).
  const turnResults = async (ids: string[]) => new Map([...(await turnsRepo.results(ids))].map(([id, r]) => [id, loadText(r)]));
  const webhookService = createWebhookService(
    createWebhookRepository(storage.db, storage.dialect),
    {
      allowPrivate: config.webhookAllowPrivate,
      retryBaseMs: config.webhookRetryBaseMs,
      retryForMs: config.webhookRetryForMs,
      maxPerUser: 50,
    },
    log,
    cluster,
  );
  /** A session's event, for its owner's webhooks (and every user's). */
  const telling = new Set<Promise<void>>();
  const tellWebhooks = (sessionId: string, type: WebhookEvent, data: unknown) => {
    // With no endpoint for the event (the common case), nothing is read.
    const p = webhookService
      .wants(type)
      .then(async (wanted) => {
        const row = wanted ? await sessionsRepo.get(sessionId) : undefined;
        if (row) await webhookService.emit(type, row.user_id, data, sessionId);
      })
      .catch((err: unknown) => log.error({ err, session_id: sessionId }, 'could not queue a webhook message'));
    telling.add(p);
    void p.finally(() => telling.delete(p));
  };
  const events = tellingWebhooks(
    cluster.shared ? createSharedEventLog(eventRepo, turnResults, cluster, log) : createEventLog(eventRepo, turnResults, log),
    tellWebhooks,
  );
  const logUpkeep = startLogUpkeep({ repo: eventRepo, partialsKeepMs: config.partialEventsKeepMs, retentionDays: config.eventRetentionDays, log });
  await endAbandonedStreams(events, abandoned);

  const approvals = createApprovals({
    repo: permissionsRepo,
    sessions: sessionsRepo,
    events,
    timeoutMs: config.permissionTimeoutMs,
    log,
    cluster,
    ...(isolation.policy.fetchDomains
      ? {
          fetchAllowed: (url: unknown) => fetchAllowed(url, isolation.policy.allowedDomains),
          fetchRefusal: `WebFetch may only reach the domains this server allows (SANDBOX_NETWORK): ${isolation.policy.allowedDomains.join(', ')}.`,
        }
      : {}),
  });

  const agentService = createAgentService({
    repo: createAgentRepository(storage.db),
    policy: {
      mcpCommands: config.mcpAllowedCommands,
      envAllowed: config.agentEnvAllowed,
      urlAllowed: (url) => fetchAllowed(url, isolation.policy.allowedDomains),
      network: isolation.policy.allowedDomains.length > 0 ? isolation.policy.allowedDomains.join(', ') : 'none',
    },
  });
  const guard = createRunGuard({
    workspace,
    multiUser: async () => !(await callers.singleUser()),
    sandboxMissing: isolation.state.mode === 'auto' && !isolation.state.enabled ? isolation.state.reason : null,
  });
  const snapshots = createSnapshots(config.workspaceRoot);
  if (!snapshots.available) log.warn('git cannot be run here: what each turn changed is not recorded, and rewind is off (install git)');
  const folderStates = createFolderStates(snapshots, (err) => log.warn({ err }, "could not snapshot a session's folder"));
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
    beforeStart: (spec) => {
      const guarded = spec.userId === undefined ? undefined : guard({ session_id: spec.sessionId, user_id: spec.userId, cwd: spec.cwd });
      if (!spec.options) return guarded;
      // The operator's policy as it is now (a command taken off MCP_ALLOWED_COMMANDS, a host off SANDBOX_NETWORK): checked again before each process.
      return Promise.resolve(guarded).then(() => agentService.check(spec.options!, "the session's options"));
    },
    turnTimeoutMs: config.turnTimeoutMs,
    warmIdleMs: config.warmIdleMs,
    maxWarm: config.maxWarmSessions,
    spares: config.prewarmSpares,
    interruptGraceMs: config.interruptGraceMs,
    maxBudgetUsd: config.maxTurnBudgetUsd,
    ...(transcripts ? { sessionStore: transcripts, storedEntriesContaining: (key, text) => transcripts.entriesContaining(key, text) } : {}),
    verbatimPrompts: !config.promptExpansion,
    processes,
    onPreToolUse: async (sessionId, input) =>
      approvals.preToolUse({
        sessionId,
        turnId: runningTurns.get(sessionId) ?? '',
        toolName: input.tool_name,
        toolUseId: input.tool_use_id,
        input: (input.tool_input ?? {}) as Record<string, unknown>,
        mode: input.permission_mode,
      }),
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
      log.info(e, 'runner');
      if (e.type === 'spare_claimed') metrics.spareClaim('claimed');
      if (e.type === 'spare_claim_refused') metrics.spareClaim('refused');
    },
  });

  const engine = createTurnEngine({
    sessions: sessionsRepo,
    turns: turnsRepo,
    events,
    runner,
    metrics,
    log,
    limits: { maxConcurrent: config.maxConcurrentTurns, maxQueued: config.maxQueuedTurns, userMaxConcurrent: config.userMaxConcurrentTurns },
    runningTurns,
    snapshots: folderStates,
    approvals,
    transcriptExists: (s) => claudeSessions.exists(s.session_id, s.cwd),
    // With the store, a transcript only this disk has goes into it before a resume (the CLI resumes from the store).
    ...(transcripts
      ? {
          prepareResume: async (s: { session_id: string; cwd: string }) => {
            await claudeSessions.ensureShared(s.session_id, s.cwd);
          },
        }
      : {}),
    runnerId,
    cluster,
    // A tag set before the transcript existed is written to it now, so a terminal user sees it.
    onStarted: async (s) => {
      if (s.tag) await claudeSessions.tag(s.session_id, s.cwd, s.tag).catch((err: unknown) => log.warn({ err }, 'could not tag the transcript'));
    },
  });
  const turnService = createTurnService({
    config,
    sessions: sessionsRepo,
    turns: turnsRepo,
    engine,
    workspace,
    guard,
    transcriptExists: (s) => claudeSessions.exists(s.session_id, s.cwd),
  });
  const purgeHere = createPurgeHere({
    runner,
    events,
    transcripts,
    sessions: sessionsRepo,
    webhooks: webhookService,
    storage,
    claude: claudeSessions,
    interruptGraceMs: config.interruptGraceMs,
  });
  const sessionService = createSessionService({
    webhooks: webhookService,
    config,
    agents: agentService,
    sessions: sessionsRepo,
    turns: turnsRepo,
    turnService,
    engine,
    claude: claudeSessions,
    workspace,
    log,
    purgeHere,
    cluster,
  });

  return {
    storage,
    callers,
    singleUser,
    isolation: isolation.state,
    workspace,
    versions,
    metrics,
    cluster,
    events,
    logUpkeep,
    approvals,
    runner,
    engine,
    turnService,
    sessionService,
    agentService,
    fileService: createFileService({ sessions: sessionsRepo, turns: turnsRepo, maxFileBytes: config.maxFileBytes, snapshots, states: folderStates }),
    webhookService,
    async start() {
      webhookService.start();
      await resumeTurns(approvals, engine);
      await cluster.start({
        ...engine.replica,
        resync: () => {
          engine.replica.resync();
          events.pokeAll();
        },
      });
    },
    async stop(graceMs) {
      await engine.stop(graceMs);
      await webhookService.stop();
      await cluster.stop();
    },
    async close() {
      // Turns ended by the stop are told to webhooks before the database closes.
      await Promise.allSettled(telling);
      await webhookService.settled();
      approvals.stop();
      await logUpkeep.stop();
      await events.flush();
      // The CLIs' last entries (their cost totals, written as they end) reach the store first.
      await transcripts?.settled();
      await storage.close();
      if (ownsOffline) await offline!.close();
    },
  };
}
