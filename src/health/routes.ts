/**
 * @module health/routes
 * `GET /health`: liveness plus a check of the storage the sessions depend on. It answers
 * 503 when any check fails, so a load balancer stops sending turns to a replica that would
 * lose them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Type } from 'typebox';
import type { App } from '../types.js';
import { projectDir } from '../claude/paths.js';
import type { Storage } from '../storage/db.js';
import type { SandboxState } from '../claude/sandbox.js';

const DirCheck = Type.Object({ path: Type.String(), exists: Type.Boolean(), writable: Type.Boolean() });
const HealthSchema = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('degraded'), Type.Literal('shutting_down')]),
  version: Type.String(),
  sdk_version: Type.String(),
  cli_version: Type.Union([Type.String(), Type.Null()]),
  model_backend: Type.Union([Type.Literal('anthropic'), Type.Literal('offline')]),
  storage: Type.Object({
    config_dir: DirCheck,
    projects_dir: Type.Object({
      path: Type.String({
        description:
          "Projects folder of the default workspace folder (single-user: the local user's folder; with keys: the workspace root), as the CLI names it",
      }),
      exists: Type.Boolean(),
      writable: Type.Boolean({ description: 'The folder, or the nearest existing folder above it (the CLI creates the rest), takes new files' }),
    }),
    workspace_root: DirCheck,
    data_dir: DirCheck,
    database: Type.Object({ dialect: Type.String(), location: Type.String(), reachable: Type.Boolean(), error: Type.Optional(Type.String()) }),
  }),
  replica: Type.Object(
    {
      id: Type.String({ description: 'This server process, as recorded on the turns it runs' }),
      shared: Type.Boolean({ description: 'True with PostgreSQL: other replicas may share the database' }),
      listening: Type.Boolean({ description: 'Hears the other replicas (LISTEN/NOTIFY); always true alone' }),
      leases: Type.Integer({ description: 'Sessions this replica holds the lease of' }),
    },
    { description: 'Several replicas: degraded while this one cannot hear the others' },
  ),
  sandbox: Type.Object(
    {
      mode: Type.Union([Type.Literal('required'), Type.Literal('auto'), Type.Literal('off')], {
        description: 'SANDBOX (default: required with API keys, else auto)',
      }),
      enabled: Type.Boolean({ description: "Bash commands run in the CLI's sandbox" }),
      reason: Type.Union([Type.String(), Type.Null()], { description: 'Why it is off' }),
      network: Type.String({ description: 'SANDBOX_NETWORK as configured' }),
      allowed_domains: Type.Array(Type.String(), { description: 'Domains sandboxed commands may reach; empty: none' }),
      read_paths: Type.Array(Type.String(), { description: "Folders sandboxed commands may read besides the session's own" }),
    },
    { description: "Tenant isolation: the CLI's sandbox for Bash (file tools are kept in the session's folder in every mode)" },
  ),
});

/** Writes and removes a probe file: as root, access(W_OK) says yes even on a read-only mount. */
function dirCheck(dir: string) {
  const exists = fs.existsSync(dir);
  let writable = false;
  if (exists) {
    const probe = path.join(dir, `.health-${process.pid}-${Date.now()}`);
    try {
      fs.writeFileSync(probe, '');
      fs.unlinkSync(probe);
      writable = true;
    } catch {
      writable = false;
    }
  }
  return { path: dir, exists, writable };
}

/** A folder the CLI creates on first use: writable when it, or the nearest folder above it that exists, is. */
function creatableDirCheck(dir: string) {
  let existing = dir;
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  return { path: dir, exists: existing === dir, writable: dirCheck(existing).writable };
}

export interface ReplicaState {
  id: string;
  shared: boolean;
  listening: boolean;
  leases: number;
}

export interface HealthFacts {
  version: string;
  sdkVersion: string;
  cliVersion: string | null;
  modelBackend: 'anthropic' | 'offline';
  configDir: string;
  workspaceRoot: string;
  /** The folder whose CLI projects folder is checked: the single user's, or the root with keys. */
  defaultFolder: string;
  dataDir: string;
  sandbox: SandboxState;
}

export async function healthRoutes(app: App, opts: { facts: HealthFacts; storage: Storage; replica: () => ReplicaState; shuttingDown: () => boolean }) {
  const { facts, storage } = opts;
  app.get('/health', {
    schema: {
      tags: ['system'],
      operationId: 'health',
      summary: 'Liveness and storage verification',
      security: [],
      response: { 200: HealthSchema, 400: Type.Ref('Error'), 503: HealthSchema },
    },
    handler: async (_req, reply) => {
      let reachable = true;
      let error: string | undefined;
      try {
        await storage.ping();
      } catch (err) {
        reachable = false;
        error = (err as Error).message;
      }
      const configDir = dirCheck(facts.configDir);
      const workspace = dirCheck(facts.workspaceRoot);
      const dataDir = dirCheck(facts.dataDir);
      const projects = creatableDirCheck(projectDir(facts.configDir, facts.defaultFolder));
      const replica = opts.replica();
      const ok =
        reachable && configDir.writable && projects.writable && workspace.writable && dataDir.writable && facts.cliVersion !== null && replica.listening;
      // Shutting down: a load balancer sends nothing more here.
      const stopping = opts.shuttingDown();
      return reply.code(ok && !stopping ? 200 : 503).send({
        status: stopping ? 'shutting_down' : ok ? 'ok' : 'degraded',
        version: facts.version,
        sdk_version: facts.sdkVersion,
        cli_version: facts.cliVersion,
        model_backend: facts.modelBackend,
        storage: {
          config_dir: configDir,
          projects_dir: projects,
          workspace_root: workspace,
          data_dir: dataDir,
          database: { dialect: storage.dialect, location: storage.location, reachable, ...(error ? { error } : {}) },
        },
        replica,
        sandbox: facts.sandbox,
      });
    },
  });
}
