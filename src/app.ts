/**
 * @module app
 * `buildApp(config, deps)` composes the server: the services (`services.ts`, built in
 * dependency order), the plugins every request goes through, the routes, and the lifecycle.
 * Tests build it the same way the process does; `server.ts` only adds listening and signals.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Fastify from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Config } from './config.js';
import { ErrorBodySchema } from './errors.js';
import { buildServices, type ServiceDeps, type Services } from './services.js';
import { addSharedSchema, validatorCompiler } from './plugins/validation.js';
import { jsonClientError, registerRequestGuards } from './plugins/request-guards.js';
import { registerRequestId, requestIdOptions } from './plugins/request-id.js';
import { registerAuth } from './plugins/auth.js';
import { registerShutdown } from './plugins/shutdown.js';
import { registerRateLimit } from './plugins/rate-limit.js';
import { frameworkError, registerErrorHandlers } from './plugins/errors.js';
import swaggerPlugin from './plugins/swagger.js';
import webPage from './plugins/web-page.js';
import { isPublicRoute, LOCAL_USER } from './auth/caller.js';
import { userFolderName } from './workspace/workspace.js';
import type { StreamSettings } from './turns/respond.js';
import { SessionSchema } from './sessions/schemas.js';
import { TurnSchema } from './turns/schemas.js';
import { AgentSchema } from './agents/schemas.js';
import { agentRoutes } from './agents/routes.js';
import { promptBodyLimit } from './turns/prompt.js';
import { fileRoutes } from './files/routes.js';
import { webhookRoutes } from './webhooks/routes.js';
import { WebhookSchema } from './webhooks/schemas.js';
import { sessionRoutes } from './sessions/routes.js';
import { turnRoutes } from './turns/routes.js';
import { permissionRoutes } from './permissions/routes.js';
import { healthRoutes } from './health/routes.js';
import { meRoutes } from './health/me.js';
import { metricsRoutes } from './metrics/routes.js';
import type { App } from './types.js';

export const SERVER_VERSION = (JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export type AppDeps = ServiceDeps;

/** What the process needs beyond the Fastify instance. */
export type AppInternals = Pick<Services, 'storage' | 'runner' | 'engine' | 'logUpkeep' | 'singleUser'>;

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
      http.createServer(
        { requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(config.requestTimeoutMs / 4))) },
        handler,
      ),
    clientErrorHandler: jsonClientError(config.requestTimeoutMs),
    logger: { level: config.logLevel },
    bodyLimit: config.bodyLimit,
    ...requestIdOptions,
    // While shutting down, requests get this server's own 503 (plugins/shutdown.ts), not Fastify's.
    return503OnClosing: false,
    ajv: { customOptions: { removeAdditional: false } },
    // Errors the router raises before any route runs (a malformed URL, a path parameter over
    // maxParamLength) get the same JSON error shape as everything else.
    frameworkErrors: frameworkError,
    // Fastify's 10 s for a plugin to load was seen exceeded once on a 2-core machine busy with a full test run.
    pluginTimeout: 60_000,
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  for (const s of [ErrorBodySchema, SessionSchema, TurnSchema, AgentSchema, WebhookSchema] as unknown as Array<{ $id: string }>) {
    app.addSchema(s);
    addSharedSchema(s);
  }

  const s = await buildServices(config, deps, app.log);
  app.decorate('internals', { storage: s.storage, runner: s.runner, engine: s.engine, logUpkeep: s.logUpkeep, singleUser: s.singleUser });

  // Every request: refused while closing, its id echoed, its caller resolved, its rate counted,
  // its parsed parts checked; one error handler answers every failure.
  const closing = registerShutdown(app, () => s.stop(config.shutdownGraceMs));
  registerRequestId(app);
  registerAuth(app, s.callers);
  await registerRateLimit(app, { perMinute: config.rateLimitPerMinute, isPublic: isPublicRoute });
  registerRequestGuards(app);
  registerErrorHandlers(app);

  let sse = 0;
  const stream: StreamSettings = {
    events: s.events,
    heartbeatMs: config.sseHeartbeatMs,
    stallMs: config.sseStallMs,
    onOpen: () => sse++,
    onClose: () => sse--,
  };
  s.metrics.observe(() => {
    const e = s.engine.stats();
    const r = s.runner.stats();
    const c = s.cluster.state();
    return {
      running: e.running,
      waiting: e.waiting,
      queued: e.queued,
      warm: r.warm,
      busy: r.busy,
      spares: r.spares,
      sse,
      leases: c.leases,
      listening: c.listening ? 1 : 0,
    };
  });

  await app.register(swaggerPlugin, { version: SERVER_VERSION });
  await app.register(healthRoutes, {
    storage: s.storage,
    replica: () => s.cluster.state(),
    shuttingDown: closing,
    facts: {
      version: SERVER_VERSION,
      sdkVersion: s.versions.sdk,
      cliVersion: s.versions.cli,
      modelBackend: config.modelBackend,
      configDir: config.claudeConfigDir,
      workspaceRoot: s.workspace.root,
      defaultFolder: s.singleUser ? path.join(s.workspace.root, userFolderName(LOCAL_USER)) : s.workspace.root,
      dataDir: config.dataDir,
      sandbox: s.isolation,
    },
  });
  // Routes that take a prompt take its attachments too (base64, up to MAX_ATTACHMENTS of MAX_ATTACHMENT_BYTES).
  const promptBody = promptBodyLimit(config.bodyLimit, config);
  await app.register(sessionRoutes, { sessions: s.sessionService, turns: s.turnService, stream, promptBodyLimit: promptBody });
  await app.register(turnRoutes, { turns: s.turnService, stream, promptBodyLimit: promptBody });
  await app.register(agentRoutes, { agents: s.agentService });
  await app.register(webhookRoutes, { webhooks: s.webhookService });
  await app.register(fileRoutes, { files: s.fileService, prepareFork: (caller, sid, turnId) => s.sessionService.prepareForkBefore(caller, sid, turnId) });
  await app.register(permissionRoutes, { approvals: s.approvals });
  await app.register(meRoutes, { sandboxOptIn: config.sandboxOptIn, allowedPermissionModes: config.allowedPermissionModes });
  await app.register(webPage);
  await app.register(metricsRoutes, { metrics: s.metrics });

  // Turns waiting from before a restart go on; this replica joins the others.
  app.addHook('onReady', async () => s.start());
  // (Before the listener closes, plugins/shutdown.ts stops the turns; after it has, storage closes.)
  app.addHook('onClose', async () => s.close());
  return app;
}
