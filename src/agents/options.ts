/**
 * @module agents/options
 * Agent options as clients send them, checked against the operator's policy, merged with what
 * an agent or session already has (secrets kept by name), and shown with secrets hidden. Pure:
 * the policy is given.
 */
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { AppError } from '../errors.js';
import { addressesOf, isClosedAddress } from '../network.js';
import { isReservedEnvName } from '../claude/agent-options.js';
import type { AgentOptions, AgentOptionsInput, AgentOptionsView, EnvValueInput, EnvValueStored } from '../schemas.js';

/** What the operator allows agents to use. */
export interface OptionsPolicy {
  /**
   * MCP_ALLOWED_COMMANDS: what a stdio MCP server may run (on the server, outside the sandbox). An
   * entry is a command (any arguments), or a whole command line (`/usr/bin/node /opt/mcp/github.js`):
   * then exactly those arguments.
   */
  mcpCommands: readonly string[];
  /** AGENT_ENV_ALLOWED: the variable names an agent may set (`NAME`, `PREFIX*`, or `*`); reserved names never. */
  envAllowed: readonly string[];
  /** Whether an http/sse MCP server's URL is one the network policy allows. */
  urlAllowed(url: string): boolean;
  /** The network policy, for messages (SANDBOX_NETWORK's domains, or "none"). */
  network: string;
}

const invalid = (field: string, message: string) => new AppError('INVALID_REQUEST', `${field}: ${message}`, { details: { field } });

/** Most bytes of all the values an agent's options hand to processes (they travel in environments). */
const MAX_ENV_BYTES = 262_144;

function checkEnvName(name: string, policy: OptionsPolicy, field: string): void {
  if (isReservedEnvName(name)) throw invalid(field, 'this variable steers Claude Code, a runtime or a loader, and is set by the server alone');
  const ok = policy.envAllowed.some((e) => e === '*' || e === name || (e.endsWith('*') && name.startsWith(e.slice(0, -1))));
  if (!ok) {
    const allowed = policy.envAllowed.length > 0 ? policy.envAllowed.join(', ') : 'none (AGENT_ENV_ALLOWED is not set)';
    throw invalid(field, `"${name}" is not a variable the operator lets agents set (AGENT_ENV_ALLOWED: ${allowed})`);
  }
}

const valueBytes = (m: Record<string, EnvValueInput> | undefined) =>
  Object.entries(m ?? {}).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(typeof v === 'string' ? v : (v.value ?? '')), 0);

/** Checks options against the policy (the schema has checked their shapes); throws 400 naming the field. */
export async function checkOptions(o: AgentOptionsInput, policy: OptionsPolicy, at = 'body'): Promise<void> {
  let bytes = valueBytes(o.env);
  for (const name of Object.keys(o.env ?? {})) checkEnvName(name, policy, `${at}.env.${name}`);
  for (const [name, s] of Object.entries(o.mcp_servers ?? {})) {
    const field = `${at}.mcp_servers.${name}`;
    if ('command' in s) {
      const line = [s.command, ...(s.args ?? [])].join(' ');
      if (!policy.mcpCommands.some((c) => c === s.command || c === line)) {
        const allowed = policy.mcpCommands.length > 0 ? `one of: ${policy.mcpCommands.join(', ')}` : 'none (MCP_ALLOWED_COMMANDS is not set)';
        throw invalid(`${field}.command`, `"${line}" is not a command the operator allows for MCP servers (MCP_ALLOWED_COMMANDS): ${allowed}`);
      }
      for (const v of Object.keys(s.env ?? {})) checkEnvName(v, policy, `${field}.env.${v}`);
      bytes += valueBytes(s.env) + (s.args ?? []).reduce((n, a) => n + Buffer.byteLength(a), 0);
    } else {
      let url: URL;
      try {
        url = new URL(s.url);
      } catch {
        throw invalid(`${field}.url`, `"${s.url}" is not a URL`);
      }
      // https only: headers carry secrets.
      if (url.protocol !== 'https:') throw invalid(`${field}.url`, 'must be an https URL');
      if (url.username || url.password) throw invalid(`${field}.url`, 'credentials go in headers (as secrets), not in the URL');
      if (!policy.urlAllowed(s.url)) {
        throw invalid(`${field}.url`, `${url.hostname} is not a host the network policy allows (SANDBOX_NETWORK: ${policy.network})`);
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      if ((await addressesOf(host)).some(isClosedAddress)) {
        throw invalid(`${field}.url`, `${url.hostname} leads to a loopback, private or link-local address, which no agent may reach`);
      }
      bytes += valueBytes(s.headers);
    }
  }
  if (bytes > MAX_ENV_BYTES)
    throw invalid(
      `${at}.env`,
      `the values given to processes (env, MCP servers' env, arguments and headers) come to ${bytes} bytes; the limit is ${MAX_ENV_BYTES}`,
    );
  if (o.output_schema !== undefined) checkOutputSchema(o.output_schema, `${at}.output_schema`);
}

// Only the schema itself is checked (against its meta-schema): nothing is compiled or kept, so no
// `$id` is registered for everyone and no schema costs more than its own size to check.
const draft7 = new Ajv({ strict: false, addUsedSchema: false, validateSchema: false });
const draft2020 = new Ajv2020({ strict: false, addUsedSchema: false, validateSchema: false });
const MAX_SCHEMA_BYTES = 65_536;
const MAX_SCHEMA_DEPTH = 32;

function depthOf(v: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[v, 1]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_SCHEMA_DEPTH) return max;
    for (const c of Object.values(x)) stack.push([c, d + 1]);
  }
  return max;
}

/** A JSON Schema the CLI can use: an object, at most 64 KB and 32 levels deep, valid against its draft (07, or 2020-12 by `$schema`). */
export function checkOutputSchema(schema: Record<string, unknown>, field: string): void {
  if (depthOf(schema) > MAX_SCHEMA_DEPTH) throw invalid(field, `is nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
  const bytes = Buffer.byteLength(JSON.stringify(schema));
  // It reaches the CLI as one argument of its command line.
  if (bytes > MAX_SCHEMA_BYTES) throw invalid(field, `is ${bytes} bytes; the limit is ${MAX_SCHEMA_BYTES}`);
  const draft = typeof schema.$schema === 'string' && schema.$schema.includes('2020-12') ? draft2020 : draft7;
  let ok: boolean;
  try {
    ok = draft.validateSchema(schema) as boolean;
  } catch (err) {
    throw invalid(field, `is not a JSON Schema this server can check: ${(err as Error).message}`);
  }
  if (!ok) throw invalid(field, `is not a valid JSON Schema: ${draft.errorsText(draft.errors, { dataVar: 'schema' })}`);
}

/**
 * What a session may override of an agent it may not change (a shared one): not which tools run
 * without asking, not the agent's MCP servers or secret variables (which would carry the agent's
 * credentials elsewhere); it may add to `disallowed_tools`, never lift them.
 */
export function checkOverrides(agent: AgentOptions, own: AgentOptionsInput, at = 'body'): void {
  if (own.allowed_tools !== undefined) throw invalid(`${at}.allowed_tools`, "is the shared agent's own: a session of it may not change it");
  for (const name of Object.keys(own.mcp_servers ?? {})) {
    if (agent.mcp_servers?.[name]) throw invalid(`${at}.mcp_servers.${name}`, "is one of the shared agent's servers: a session of it may not change it");
  }
  for (const [name, v] of Object.entries(agent.env ?? {})) {
    if (typeof v !== 'string' && own.env?.[name] !== undefined)
      throw invalid(`${at}.env.${name}`, 'is a secret of the shared agent: a session of it may not change it');
  }
}

type InMap = Record<string, EnvValueInput> | undefined;
type StoredMap = Record<string, EnvValueStored> | undefined;

/** A map of values as stored: `{secret: true}` without a value keeps the one `previous` has under that name (when `previous` is given). */
function storeMap(input: InMap, previous: StoredMap, field: string): Record<string, EnvValueStored> | undefined {
  if (!input) return undefined;
  const out: Record<string, EnvValueStored> = {};
  for (const [k, v] of Object.entries(input)) {
    if (typeof v === 'string') out[k] = v;
    else if (v.value !== undefined) out[k] = v.secret ? { value: v.value, secret: true } : v.value;
    else {
      const kept = previous?.[k];
      if (!v.secret || kept === undefined || typeof kept === 'string') {
        throw invalid(`${field}.${k}`, 'needs a value (only an update of the agent that holds a secret under this name can keep it with {"secret": true})');
      }
      out[k] = kept;
    }
  }
  return out;
}

/**
 * The stored options after `input` is applied to `base`: each field given replaces the base's
 * (`null` removes it). With `mergeMaps` (a session's own options over its agent's), `env` and
 * `mcp_servers` add to the base's by name instead, and a secret is never kept by name: a session
 * that could name an agent's secret could hand it to a server or a variable of its own choosing.
 */
export function applyOptions(
  base: AgentOptions | null,
  input: { [K in keyof AgentOptionsInput]?: AgentOptionsInput[K] | null },
  opts: { mergeMaps: boolean; at?: string },
): AgentOptions {
  const at = opts.at ?? 'body';
  const out: Record<string, unknown> = { ...base };
  const kept = opts.mergeMaps ? null : base;
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (value === null) {
      delete out[key];
      continue;
    }
    if (key === 'env') {
      const stored = storeMap(value as InMap, kept?.env, `${at}.env`);
      out.env = opts.mergeMaps ? { ...base?.env, ...stored } : stored;
    } else if (key === 'mcp_servers') {
      const servers: NonNullable<AgentOptions['mcp_servers']> = {};
      for (const [name, s] of Object.entries(value as NonNullable<AgentOptionsInput['mcp_servers']>)) {
        const before = kept?.mcp_servers?.[name];
        if ('command' in s) {
          const env = storeMap(s.env, before && 'command' in before ? before.env : undefined, `${at}.mcp_servers.${name}.env`);
          const { env: _in, ...rest } = s;
          servers[name] = { ...rest, ...(env ? { env } : {}) };
        } else {
          const headers = storeMap(s.headers, before && !('command' in before) ? before.headers : undefined, `${at}.mcp_servers.${name}.headers`);
          const { headers: _in, ...rest } = s;
          servers[name] = { ...rest, ...(headers ? { headers } : {}) };
        }
      }
      out.mcp_servers = opts.mergeMaps ? { ...base?.mcp_servers, ...servers } : servers;
    } else out[key] = value;
  }
  return out;
}

const viewMap = (m: StoredMap) =>
  m ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === 'string' ? v : { secret: true as const }])) : undefined;

/** The options as anyone is shown them: every secret reads `{secret: true}`. */
export function viewOptions(o: AgentOptions | null): AgentOptionsView {
  if (!o) return {};
  const view: AgentOptionsView = { ...o };
  if (o.env) view.env = viewMap(o.env)!;
  if (o.mcp_servers) {
    view.mcp_servers = Object.fromEntries(
      Object.entries(o.mcp_servers).map(([name, s]) => [
        name,
        'command' in s ? { ...s, ...(s.env ? { env: viewMap(s.env)! } : {}) } : { ...s, ...(s.headers ? { headers: viewMap(s.headers)! } : {}) },
      ]),
    ) as AgentOptionsView['mcp_servers'];
  }
  return view;
}
