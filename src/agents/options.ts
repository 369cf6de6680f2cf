/**
 * @module agents/options
 * Agent options as clients send them, checked against the operator's policy, merged with what
 * an agent or session already has (secrets kept by name), and shown with secrets hidden. Pure:
 * the policy is given.
 */
import { Ajv } from 'ajv';
import { AppError } from '../errors.js';
import { isReservedEnvName } from '../claude/agent-options.js';
import type { AgentOptions, AgentOptionsInput, AgentOptionsView, EnvValueInput, EnvValueStored } from '../schemas.js';

/** What the operator allows agents to use. */
export interface OptionsPolicy {
  /** MCP_ALLOWED_COMMANDS: the only commands a stdio MCP server may run (they run on the server, unsandboxed). */
  mcpCommands: readonly string[];
  /** Whether an http/sse MCP server's URL is one the network policy allows. */
  urlAllowed(url: string): boolean;
  /** The network policy, for messages (SANDBOX_NETWORK's domains, or "none"). */
  network: string;
}

const invalid = (field: string, message: string) => new AppError('INVALID_REQUEST', `${field}: ${message}`, { details: { field } });

/** Checks options against the policy (the schema has checked their shapes); throws 400 naming the field. */
export function checkOptions(o: AgentOptionsInput, policy: OptionsPolicy, at = 'body'): void {
  for (const name of Object.keys(o.env ?? {})) {
    if (isReservedEnvName(name)) throw invalid(`${at}.env.${name}`, 'this variable is set by the server for Claude Code and may not be given');
  }
  for (const [name, s] of Object.entries(o.mcp_servers ?? {})) {
    const field = `${at}.mcp_servers.${name}`;
    if ('command' in s) {
      if (!policy.mcpCommands.includes(s.command)) {
        const allowed = policy.mcpCommands.length > 0 ? `one of: ${policy.mcpCommands.join(', ')}` : 'none (MCP_ALLOWED_COMMANDS is not set)';
        throw invalid(`${field}.command`, `"${s.command}" is not a command the operator allows for MCP servers (MCP_ALLOWED_COMMANDS): ${allowed}`);
      }
      for (const v of Object.keys(s.env ?? {})) {
        if (isReservedEnvName(v)) throw invalid(`${field}.env.${v}`, 'this variable steers the process itself and may not be given');
      }
    } else {
      let url: URL;
      try {
        url = new URL(s.url);
      } catch {
        throw invalid(`${field}.url`, `"${s.url}" is not a URL`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`${field}.url`, 'must be an http or https URL');
      if (url.username || url.password) throw invalid(`${field}.url`, 'credentials go in headers (as secrets), not in the URL');
      if (!policy.urlAllowed(s.url)) {
        throw invalid(`${field}.url`, `${url.hostname} is not a host the network policy allows (SANDBOX_NETWORK: ${policy.network})`);
      }
    }
  }
  if (o.output_schema !== undefined) checkOutputSchema(o.output_schema, `${at}.output_schema`);
}

const ajv = new Ajv({ strict: false, allErrors: false, validateSchema: true });

/** A JSON Schema the CLI can use: an object schema that compiles. */
export function checkOutputSchema(schema: Record<string, unknown>, field: string): void {
  if (JSON.stringify(schema).length > 65_536) throw invalid(field, 'is larger than 64 KB');
  try {
    ajv.compile(schema);
  } catch (err) {
    throw invalid(field, `is not a valid JSON Schema: ${(err as Error).message}`);
  }
}

type InMap = Record<string, EnvValueInput> | undefined;
type StoredMap = Record<string, EnvValueStored> | undefined;

/** A map of values as stored: `{secret: true}` without a value keeps the one `previous` has under that name. */
function storeMap(input: InMap, previous: StoredMap, field: string): Record<string, EnvValueStored> | undefined {
  if (!input) return undefined;
  const out: Record<string, EnvValueStored> = {};
  for (const [k, v] of Object.entries(input)) {
    if (typeof v === 'string') out[k] = v;
    else if (v.value !== undefined) out[k] = v.secret ? { value: v.value, secret: true } : v.value;
    else {
      const kept = previous?.[k];
      if (!v.secret || kept === undefined || typeof kept === 'string') {
        throw invalid(`${field}.${k}`, 'needs a value (only a secret already set under this name can be kept with {"secret": true})');
      }
      out[k] = kept;
    }
  }
  return out;
}

/**
 * The stored options after `input` is applied to `base`: each field given replaces the base's
 * (`null` removes it); with `mergeMaps`, `env` and `mcp_servers` add to the base's by name instead.
 */
export function applyOptions(
  base: AgentOptions | null,
  input: { [K in keyof AgentOptionsInput]?: AgentOptionsInput[K] | null },
  opts: { mergeMaps: boolean; at?: string },
): AgentOptions {
  const at = opts.at ?? 'body';
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    if (value === null) {
      delete out[key];
      continue;
    }
    if (key === 'env') {
      const stored = storeMap(value as InMap, base?.env, `${at}.env`);
      out.env = opts.mergeMaps ? { ...base?.env, ...stored } : stored;
    } else if (key === 'mcp_servers') {
      const servers: NonNullable<AgentOptions['mcp_servers']> = {};
      for (const [name, s] of Object.entries(value as NonNullable<AgentOptionsInput['mcp_servers']>)) {
        const before = base?.mcp_servers?.[name];
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
