/**
 * @module config
 * The whole configuration of the server, read from the environment in one schema.
 * Defaults are the README's "Configuration" table; derived values (paths made absolute, capacity from the
 * machine's size) are computed here so that nothing else reads `process.env`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import envSchema from 'env-schema';
import { Type, type Static } from 'typebox';
import { PERMISSION_MODES, type PermissionMode } from './schemas.js';

const EnvSchema = Type.Object({
  HOST: Type.String({ default: '127.0.0.1' }),
  PORT: Type.Integer({ default: 8000, minimum: 0, maximum: 65535 }),
  DATA_DIR: Type.String({ default: './data' }),
  DATABASE_URL: Type.Optional(Type.String()),
  WORKSPACE_ROOT: Type.String({ default: './workspace' }),
  CLAUDE_CONFIG_DIR: Type.Optional(Type.String()),
  API_KEYS: Type.Optional(Type.String()),
  ADMIN_USERS: Type.Optional(Type.String()),
  MODEL_BACKEND: Type.Union([Type.Literal('auto'), Type.Literal('anthropic'), Type.Literal('offline')], { default: 'auto' }),
  ANTHROPIC_API_KEY: Type.Optional(Type.String()),
  ANTHROPIC_BASE_URL: Type.Optional(Type.String()),
  ANTHROPIC_AUTH_TOKEN: Type.Optional(Type.String()),
  MAX_CONCURRENT_TURNS: Type.Optional(Type.Integer({ minimum: 1 })),
  USER_MAX_CONCURRENT_TURNS: Type.Optional(Type.Integer({ minimum: 1 })),
  WARM_IDLE_MS: Type.Integer({ default: 300_000, minimum: 0 }),
  MAX_WARM_SESSIONS: Type.Optional(Type.Integer({ minimum: 0 })),
  PREWARM_SPARES: Type.Integer({ default: 1, minimum: 0 }),
  PERMISSION_TIMEOUT_MS: Type.Integer({ default: 300_000, minimum: 1 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ default: 10_000, minimum: 0 }),
  LOG_LEVEL: Type.String({ default: 'info' }),
  /** Operator opt-in for bypassPermissions as root: passed to the CLI as IS_SANDBOX=1. */
  IS_SANDBOX: Type.Optional(Type.String()),
  /** Longest prompt accepted, in characters. */
  MAX_PROMPT_CHARS: Type.Integer({ default: 100_000, minimum: 1 }),
  /** Largest request body, in bytes. */
  BODY_LIMIT: Type.Integer({ default: 1_048_576, minimum: 1024 }),
  /** Largest attachment (image, PDF) of a prompt, in bytes once decoded. */
  MAX_ATTACHMENT_BYTES: Type.Integer({ default: 5_242_880, minimum: 1 }),
  /** Largest file written through the files API, in bytes. */
  MAX_FILE_BYTES: Type.Integer({ default: 104_857_600, minimum: 1 }),
  /** Most attachments in one prompt. */
  MAX_ATTACHMENTS: Type.Integer({ default: 4, minimum: 0, maximum: 100 }),
  /** Variable names agents may set (comma-separated; `PREFIX*`, or `*` for any name that is not reserved). */
  AGENT_ENV_ALLOWED: Type.String({ default: '' }),
  /** Commands an agent's stdio MCP server may run (comma-separated, exact): they run on the server, outside the sandbox. */
  MCP_ALLOWED_COMMANDS: Type.String({ default: '' }),
  /** An interrupt the CLI does not answer within this (stopped, stuck) ends its process. */
  INTERRUPT_GRACE_MS: Type.Integer({ default: 5_000, minimum: 100 }),
  /** A request (headers and body) not received whole within this is dropped with 408; responses (SSE) are not bound by it. */
  REQUEST_TIMEOUT_MS: Type.Integer({ default: 30_000, minimum: 1000 }),
  /**
   * A finished turn's token-level partial events (`stream_event` messages) are kept this long for
   * clients that reconnect, then removed: its whole messages stay.
   */
  PARTIAL_EVENTS_KEEP_MS: Type.Integer({ default: 60_000, minimum: 0 }),
  /** Events older than this many days are removed (0: kept until the session is purged). Turns and transcripts stay. */
  EVENT_RETENTION_DAYS: Type.Number({ default: 0, minimum: 0 }),
  /** A turn that runs longer than this is interrupted and fails with TURN_TIMEOUT. */
  TURN_TIMEOUT_MS: Type.Integer({ default: 600_000, minimum: 1000 }),
  /** Turns that may wait (queued) at most; 429 with Retry-After beyond. */
  MAX_QUEUED_TURNS: Type.Integer({ default: 256, minimum: 0 }),
  /** An SSE comment is sent at least this often. */
  SSE_HEARTBEAT_MS: Type.Integer({ default: 15_000, minimum: 10 }),
  /** An SSE client that takes no data for this long is dropped. */
  SSE_STALL_MS: Type.Integer({ default: 60_000, minimum: 10 }),
  /** Permission modes clients may ask for; bypassPermissions and acceptEdits only when listed. */
  ALLOWED_PERMISSION_MODES: Type.String({ default: 'default,plan,dontAsk' }),
  /** Requests per minute for one API key (one user); 429 with Retry-After beyond. */
  RATE_LIMIT_PER_MINUTE: Type.Integer({ default: 1200, minimum: 1 }),
  /** Most a turn may spend (SDK maxBudgetUsd); unset: no limit. */
  MAX_TURN_BUDGET_USD: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  /** `database`: mirror transcripts into PostgreSQL (the SDK's sessionStore) so another replica can resume them. */
  TRANSCRIPT_STORE: Type.Union([Type.Literal('local'), Type.Literal('database')], { default: 'local' }),
  /** With PostgreSQL: a replica that stops renewing its sessions' leases loses them after this long (another takes over). */
  REPLICA_LEASE_MS: Type.Integer({ default: 15_000, minimum: 500, maximum: 300_000 }),
  /** With PostgreSQL: 1 (default) WORKSPACE_ROOT is one volume every replica mounts (checked at start); 0: each replica's own disk. */
  WORKSPACE_SHARED: Type.Union([Type.Literal('1'), Type.Literal('0'), Type.Literal('true'), Type.Literal('false')], { default: '1' }),
  /** 1: webhooks may point at loopback, private and link-local addresses (off: refused when made and when sent). */
  WEBHOOK_ALLOW_PRIVATE: Type.Optional(Type.String()),
  /** The first retry of an undelivered webhook message after this long; each next one doubles (at most 8 h apart). */
  WEBHOOK_RETRY_BASE_MS: Type.Integer({ default: 5_000, minimum: 10, maximum: 3_600_000 }),
  /** An undelivered webhook message is retried this long, then given up (a day). */
  WEBHOOK_RETRY_FOR_MS: Type.Integer({ default: 86_400_000, minimum: 1_000 }),
  /** 1: prompts get @file expansion and slash commands (off: clients' text reaches the CLI verbatim). */
  ALLOW_PROMPT_EXPANSION: Type.Optional(Type.String()),
  /** The CLI's sandbox for Bash: `required` (default with API keys), `auto` (default single-user), `off`. */
  SANDBOX: Type.Optional(Type.Union([Type.Literal('required'), Type.Literal('auto'), Type.Literal('off')])),
  /** Network of sandboxed commands: `none` (default), `model`, or a comma-separated list of domains. */
  SANDBOX_NETWORK: Type.String({ default: 'none' }),
  /** Folders sandboxed commands may read besides the session's own, comma-separated (default: the system's program folders). */
  SANDBOX_READ_PATHS: Type.Optional(Type.String()),
});
export type Env = Static<typeof EnvSchema>;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string | undefined;
  workspaceRoot: string;
  claudeConfigDir: string;
  apiKeys: string | undefined;
  adminUsers: string[];
  modelBackend: 'anthropic' | 'offline';
  /** True when MODEL_BACKEND was `auto` and no credentials were found. */
  modelBackendAuto: boolean;
  anthropicApiKey: string | undefined;
  anthropicBaseUrl: string | undefined;
  anthropicAuthToken: string | undefined;
  maxConcurrentTurns: number;
  userMaxConcurrentTurns: number | undefined;
  warmIdleMs: number;
  maxWarmSessions: number;
  prewarmSpares: number;
  permissionTimeoutMs: number;
  shutdownGraceMs: number;
  logLevel: string;
  sandboxOptIn: boolean;
  maxPromptChars: number;
  bodyLimit: number;
  turnTimeoutMs: number;
  requestTimeoutMs: number;
  interruptGraceMs: number;
  partialEventsKeepMs: number;
  eventRetentionDays: number;
  maxQueuedTurns: number;
  sseHeartbeatMs: number;
  sseStallMs: number;
  allowedPermissionModes: PermissionMode[];
  rateLimitPerMinute: number;
  maxTurnBudgetUsd: number | undefined;
  promptExpansion: boolean;
  transcriptStore: 'local' | 'database';
  /** With PostgreSQL: WORKSPACE_ROOT is one volume shared by every replica (checked at start). */
  workspaceShared: boolean;
  /** WEBHOOK_ALLOW_PRIVATE. */
  webhookAllowPrivate: boolean;
  webhookRetryBaseMs: number;
  webhookRetryForMs: number;
  replicaLeaseMs: number;
  /** SANDBOX as given; unset: `required` when API keys exist at start, else `auto`. */
  sandbox: 'required' | 'auto' | 'off' | undefined;
  /** Domains sandboxed commands may reach; empty: none. */
  sandboxDomains: string[];
  /** SANDBOX_NETWORK as given (`none`, `model`, or the list), for /health. */
  sandboxNetwork: string;
  maxAttachmentBytes: number;
  maxAttachments: number;
  maxFileBytes: number;
  /** AGENT_ENV_ALLOWED as a list. */
  agentEnvAllowed: string[];
  /** MCP_ALLOWED_COMMANDS as a list. */
  mcpAllowedCommands: string[];
  /** Folders sandboxed commands may read besides the session's own; undefined: the defaults. */
  sandboxReadPaths: string[] | undefined;
}

/**
 * Memory of one warm CLI process, used to size the defaults: its PSS (its private pages and its share
 * of those it shares with the other CLIs) measured 121 MB, median of 8 warm processes (`bench -- memory`).
 */
const CLI_PRIVATE_MB = 120;

function parseModes(list: string): PermissionMode[] {
  const modes = list
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  for (const m of modes) {
    if (!(PERMISSION_MODES as readonly string[]).includes(m))
      throw new Error(`ALLOWED_PERMISSION_MODES: unknown mode "${m}" (known: ${PERMISSION_MODES.join(', ')})`);
  }
  if (!modes.includes('default')) modes.unshift('default');
  return modes as PermissionMode[];
}

/** A name for this machine or a bare address (IP literals are not domains here). */
const localName = (d: string) => /^(\*\.)?localhost$|\.localhost$|^[\d.]+$|^\*$/.test(d);

const DOMAIN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i;

/** The domains of SANDBOX_NETWORK: none, the model's host (never a loopback one), or the list given. */
function sandboxDomains(value: string, model: { backend: 'anthropic' | 'offline'; baseUrl: string | undefined }): string[] {
  const v = value.trim();
  if (v === '' || v === 'none') return [];
  if (v === 'model') {
    // The offline model is on loopback: opening loopback would open every local service (PostgreSQL too).
    if (model.backend === 'offline') return [];
    const host = model.baseUrl ? new URL(model.baseUrl).hostname.toLowerCase() : 'api.anthropic.com';
    return DOMAIN.test(host) && !localName(host) ? [host] : [];
  }
  const list = v
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter(Boolean);
  for (const d of list) {
    if (!DOMAIN.test(d))
      throw new Error(`SANDBOX_NETWORK: "${d}" is not a domain (use none, model, or a comma-separated list such as registry.npmjs.org,*.github.com)`);
    if (localName(d))
      throw new Error(`SANDBOX_NETWORK: "${d}" names this machine or an address, not a domain: loopback would open every local service (the database too)`);
  }
  return list;
}

function readPaths(value: string | undefined): string[] | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const list = value
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  for (const p of list) {
    if (!path.isAbsolute(p) || p.split('/').includes('..')) throw new Error(`SANDBOX_READ_PATHS: "${p}" must be an absolute path without ".."`);
    if (path.resolve(p) === '/') throw new Error('SANDBOX_READ_PATHS: "/" would let commands read everything (other users\' folders included)');
  }
  // A read path that is a link is granted where it leads: say that, as the sandbox will see it.
  return list.map((p) => (fs.existsSync(p) ? fs.realpathSync.native(p) : path.resolve(p)));
}

/** True when `host` is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Reads the configuration from `env` (default: `process.env`). Throws with a readable
 * message when a variable is malformed.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = envSchema<Env>({ schema: EnvSchema, data: env, dotenv: false });
  const hasCredentials = Boolean(e.ANTHROPIC_API_KEY || e.ANTHROPIC_AUTH_TOKEN);
  const modelBackend = e.MODEL_BACKEND === 'auto' ? (hasCredentials ? 'anthropic' : 'offline') : e.MODEL_BACKEND;
  const memMb = os.totalmem() / 1_048_576;
  // Half of memory for CLI processes; each running turn also spends CPU, so cap by cores.
  const byMemory = Math.max(1, Math.floor((memMb * 0.5) / CLI_PRIVATE_MB));
  const cores = os.availableParallelism();
  const config: Config = {
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL || undefined,
    workspaceRoot: path.resolve(e.WORKSPACE_ROOT),
    claudeConfigDir: path.resolve(e.CLAUDE_CONFIG_DIR || path.join(os.homedir(), '.claude')),
    apiKeys: e.API_KEYS || undefined,
    adminUsers: (e.ADMIN_USERS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    modelBackend,
    modelBackendAuto: e.MODEL_BACKEND === 'auto' && modelBackend === 'offline',
    anthropicApiKey: e.ANTHROPIC_API_KEY || undefined,
    anthropicBaseUrl: e.ANTHROPIC_BASE_URL || undefined,
    anthropicAuthToken: e.ANTHROPIC_AUTH_TOKEN || undefined,
    maxConcurrentTurns: e.MAX_CONCURRENT_TURNS ?? Math.max(2, Math.min(cores * 4, byMemory)),
    userMaxConcurrentTurns: e.USER_MAX_CONCURRENT_TURNS,
    warmIdleMs: e.WARM_IDLE_MS,
    maxWarmSessions: e.MAX_WARM_SESSIONS ?? byMemory,
    prewarmSpares: e.PREWARM_SPARES,
    permissionTimeoutMs: e.PERMISSION_TIMEOUT_MS,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    logLevel: e.LOG_LEVEL,
    sandboxOptIn: e.IS_SANDBOX === '1' || e.IS_SANDBOX === 'true',
    maxPromptChars: e.MAX_PROMPT_CHARS,
    bodyLimit: e.BODY_LIMIT,
    turnTimeoutMs: e.TURN_TIMEOUT_MS,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    interruptGraceMs: e.INTERRUPT_GRACE_MS,
    partialEventsKeepMs: e.PARTIAL_EVENTS_KEEP_MS,
    eventRetentionDays: e.EVENT_RETENTION_DAYS,
    maxQueuedTurns: e.MAX_QUEUED_TURNS,
    sseHeartbeatMs: e.SSE_HEARTBEAT_MS,
    sseStallMs: e.SSE_STALL_MS,
    allowedPermissionModes: parseModes(e.ALLOWED_PERMISSION_MODES),
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    maxTurnBudgetUsd: e.MAX_TURN_BUDGET_USD,
    promptExpansion: e.ALLOW_PROMPT_EXPANSION === '1' || e.ALLOW_PROMPT_EXPANSION === 'true',
    transcriptStore: e.TRANSCRIPT_STORE,
    replicaLeaseMs: e.REPLICA_LEASE_MS,
    workspaceShared: e.WORKSPACE_SHARED === '1' || e.WORKSPACE_SHARED === 'true',
    webhookAllowPrivate: e.WEBHOOK_ALLOW_PRIVATE === '1' || e.WEBHOOK_ALLOW_PRIVATE === 'true',
    webhookRetryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
    webhookRetryForMs: e.WEBHOOK_RETRY_FOR_MS,
    sandbox: e.SANDBOX,
    sandboxDomains: sandboxDomains(e.SANDBOX_NETWORK, { backend: modelBackend, baseUrl: e.ANTHROPIC_BASE_URL || undefined }),
    sandboxNetwork: e.SANDBOX_NETWORK.trim() || 'none',
    maxAttachmentBytes: e.MAX_ATTACHMENT_BYTES,
    maxAttachments: e.MAX_ATTACHMENTS,
    maxFileBytes: e.MAX_FILE_BYTES,
    agentEnvAllowed: e.AGENT_ENV_ALLOWED.split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    mcpAllowedCommands: e.MCP_ALLOWED_COMMANDS.split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    sandboxReadPaths: readPaths(e.SANDBOX_READ_PATHS),
  };
  // A user's folder is a folder of WORKSPACE_ROOT: the server's own folders must not be one (a user
  // named "data" would work in DATA_DIR).
  for (const [name, dir] of [
    ['DATA_DIR', config.dataDir],
    ['CLAUDE_CONFIG_DIR', config.claudeConfigDir],
  ] as const) {
    const inside = (a: string, b: string) => a === b || a.startsWith(b + path.sep);
    if (inside(dir, config.workspaceRoot) || inside(config.workspaceRoot, dir)) {
      throw new Error(`${name} (${dir}) and WORKSPACE_ROOT (${config.workspaceRoot}) must not hold one another: users' folders live in WORKSPACE_ROOT`);
    }
  }
  if (config.transcriptStore === 'database' && !config.databaseUrl) {
    throw new Error('TRANSCRIPT_STORE=database needs DATABASE_URL (PostgreSQL): replicas share transcripts through it');
  }
  return config;
}
