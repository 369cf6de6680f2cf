/**
 * @module agents/routes
 * HTTP routes of the agent resource. Each route declares its schemas; handlers only call the service.
 */
import { Type } from 'typebox';
import type { App } from '../types.js';
import { commonErrors, sessionErrors } from '../errors.js';
import type { AgentService } from './service.js';
import {
  AgentListSchema,
  AgentParamsSchema,
  AgentVersionListSchema,
  AgentVersionParamsSchema,
  CreateAgentBodySchema,
  ListAgentsQuerySchema,
  ListVersionsQuerySchema,
  UpdateAgentBodySchema,
} from './schemas.js';

const tags = ['agents'];
const AgentRef = Type.Ref('Agent');

export async function agentRoutes(app: App, opts: { agents: AgentService }) {
  const svc = opts.agents;

  app.post('/v1/agents', {
    schema: {
      tags,
      operationId: 'createAgent',
      summary: 'Create an agent (version 1): instructions, model, tools, MCP servers, limits, output schema, environment',
      body: CreateAgentBodySchema,
      response: { 201: AgentRef, ...commonErrors },
    },
    handler: async (req, reply) => reply.code(201).send(await svc.create(req.caller, req.body)),
  });

  app.get('/v1/agents', {
    schema: {
      tags,
      operationId: 'listAgents',
      summary: "The caller's agents and the shared ones, newest change first",
      querystring: ListAgentsQuerySchema,
      response: { 200: AgentListSchema, ...commonErrors },
    },
    handler: async (req) => svc.list(req.caller, req.query),
  });

  app.get('/v1/agents/:agent_id', {
    schema: {
      tags,
      operationId: 'getAgent',
      summary: 'An agent at its newest version',
      params: AgentParamsSchema,
      response: { 200: AgentRef, ...sessionErrors },
    },
    handler: async (req) => svc.get(req.caller, req.params.agent_id),
  });

  app.patch('/v1/agents/:agent_id', {
    schema: {
      tags,
      operationId: 'updateAgent',
      summary: 'Change an agent: a new version (sessions made before keep theirs)',
      params: AgentParamsSchema,
      body: UpdateAgentBodySchema,
      response: { 200: AgentRef, ...sessionErrors },
    },
    handler: async (req) => svc.update(req.caller, req.params.agent_id, req.body),
  });

  app.delete('/v1/agents/:agent_id', {
    schema: {
      tags,
      operationId: 'archiveAgent',
      summary: 'Archive an agent: it starts no new sessions; its versions stay readable and its sessions go on',
      params: AgentParamsSchema,
      response: { 200: AgentRef, ...sessionErrors },
    },
    handler: async (req) => svc.archive(req.caller, req.params.agent_id),
  });

  app.post('/v1/agents/:agent_id/restore', {
    schema: { tags, operationId: 'restoreAgent', summary: 'Undo an archive', params: AgentParamsSchema, response: { 200: AgentRef, ...sessionErrors } },
    handler: async (req) => svc.restore(req.caller, req.params.agent_id),
  });

  app.get('/v1/agents/:agent_id/versions', {
    schema: {
      tags,
      operationId: 'listAgentVersions',
      summary: 'Every version of an agent, newest first',
      params: AgentParamsSchema,
      querystring: ListVersionsQuerySchema,
      response: { 200: AgentVersionListSchema, ...sessionErrors },
    },
    handler: async (req) => svc.versions(req.caller, req.params.agent_id, req.query),
  });

  app.get('/v1/agents/:agent_id/versions/:version', {
    schema: {
      tags,
      operationId: 'getAgentVersion',
      summary: 'One version of an agent',
      params: AgentVersionParamsSchema,
      response: { 200: AgentRef, ...sessionErrors },
    },
    handler: async (req) => svc.get(req.caller, req.params.agent_id, req.params.version),
  });
}
