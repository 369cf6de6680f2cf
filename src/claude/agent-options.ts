/**
 * @module claude/agent-options
 * A session's agent options (system prompt, tools, MCP servers, limits, output schema,
 * environment) as SDK options. Which of them a prewarmed spare can take at its claim, and which
 * make a process that a turn with other options cannot reuse. Which environment names are the
 * CLI's own and may not be set by a user.
 */
import type { McpServerConfig, Options } from '@anthropic-ai/claude-agent-sdk';
import { SERVER_ONLY_ENV } from './runner/child-env.js';
import type { AgentOptions, EnvValueStored } from '../schemas.js';

export type { AgentOptions } from '../schemas.js';

/** Prefixes of variables that steer the CLI, Node, the loader or a proxy: never a user's to set. */
const RESERVED_PREFIXES = ['ANTHROPIC_', 'CLAUDE', 'NODE_', 'NPM_CONFIG_', 'LD_', 'DYLD_', 'BUN_', 'MCP_', 'OTEL_', 'DISABLE_', 'ENABLE_', 'GIT_CONFIG'];
const RESERVED_NAMES = new Set([
  'PATH',
  'HOME',
  'USER',
  'SHELL',
  'PWD',
  'TMPDIR',
  'TMP',
  'TEMP',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'BASH_ENV',
  'ENV',
  'PYTHONPATH',
  'PYTHONSTARTUP',
  'PERL5OPT',
  'RUBYOPT',
  ...SERVER_ONLY_ENV,
]);

/**
 * Whether a variable is one only the server sets for a CLI process or an MCP server it starts:
 * the model's endpoint and key, the CLI's configuration, Node's and the loader's options (code
 * that would run outside the sandbox), proxies, the temporary folder.
 */
export function isReservedEnvName(name: string): boolean {
  const up = name.toUpperCase();
  return RESERVED_NAMES.has(up) || RESERVED_PREFIXES.some((p) => up.startsWith(p));
}

const valueOf = (v: EnvValueStored): string => (typeof v === 'string' ? v : v.value);
const values = (m: Record<string, EnvValueStored> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, valueOf(v)]));

/** The secret values of the options (to keep them out of logs). */
export function secretValues(o: AgentOptions | null | undefined): string[] {
  if (!o) return [];
  const maps = [o.env, ...Object.values(o.mcp_servers ?? {}).map((s) => ('command' in s ? s.env : s.headers))];
  return maps.flatMap((m) => Object.values(m ?? {}).flatMap((v) => (typeof v === 'string' ? [] : [v.value])));
}

/** What a turn adds to its session's options. */
export interface TurnOptions {
  /** The turn's own output schema (else the session's). */
  outputSchema?: Record<string, unknown> | null | undefined;
}

/** The output schema a turn runs with: its own, else its session's. */
export const outputSchemaOf = (o: AgentOptions | null | undefined, t: TurnOptions | undefined): Record<string, unknown> | null =>
  t?.outputSchema ?? o?.output_schema ?? null;

/** The SDK options that carry the agent options (the host's own come first; `disallowed` adds to its list). */
export function agentSdkOptions(o: AgentOptions | null | undefined, t: TurnOptions | undefined, hostDisallowed: string[] | undefined): Partial<Options> {
  const out: Partial<Options> = {};
  const schema = outputSchemaOf(o, t);
  if (schema) out.outputFormat = { type: 'json_schema', schema };
  if (!o) return out;
  if (o.system_prompt) out.systemPrompt = o.append_system_prompt ? `${o.system_prompt}\n\n${o.append_system_prompt}` : o.system_prompt;
  else if (o.append_system_prompt) out.systemPrompt = { type: 'preset', preset: 'claude_code', append: o.append_system_prompt };
  if (o.fallback_model) out.fallbackModel = o.fallback_model;
  if (o.allowed_tools?.length) out.allowedTools = o.allowed_tools;
  if (o.disallowed_tools?.length) out.disallowedTools = [...new Set([...(hostDisallowed ?? []), ...o.disallowed_tools])];
  if (o.max_turns !== undefined) out.maxTurns = o.max_turns;
  if (o.effort) out.effort = o.effort;
  if (o.thinking) out.thinking = o.thinking.type === 'enabled' ? { type: 'enabled', budgetTokens: o.thinking.budget_tokens } : { type: o.thinking.type };
  if (o.mcp_servers && Object.keys(o.mcp_servers).length > 0) {
    const servers: Record<string, McpServerConfig> = {};
    for (const [name, s] of Object.entries(o.mcp_servers)) {
      // alwaysLoad: the CLI waits for the server (5 s at most) so its tools and its status are known at the turn's start.
      servers[name] =
        'command' in s
          ? { type: 'stdio', command: s.command, args: s.args ?? [], env: values(s.env), alwaysLoad: true }
          : { type: s.type, url: s.url, headers: values(s.headers), alwaysLoad: true };
    }
    out.mcpServers = servers;
    // Over stdin, not the command line: their env and headers (secrets) stay out of `ps`.
    out.mcpServersDelivery = 'initialize';
  }
  return out;
}

/** The agent's environment for the CLI process (added to the server's; the names were checked on the way in). */
export const agentEnv = (o: AgentOptions | null | undefined): Record<string, string> => values(o?.env);

/** The lower of the server's and the agent's budget for one turn. */
export function turnBudget(server: number | undefined, o: AgentOptions | null | undefined): number | undefined {
  const a = o?.max_budget_usd;
  if (a === undefined) return server;
  return server === undefined ? a : Math.min(server, a);
}

/**
 * Whether a prewarmed spare can serve a session with these options: a claim sets only the folder,
 * model, mode, an appended system prompt and a title; everything else is fixed when a spare starts.
 */
export function claimable(o: AgentOptions | null | undefined, t: TurnOptions | undefined): boolean {
  if (outputSchemaOf(o, t)) return false;
  if (!o) return true;
  return Object.keys(o).every((k) => k === 'append_system_prompt');
}

/**
 * What a process was started with that a later turn cannot change in place: a turn whose key
 * differs runs in a new process. Secrets are part of it (a changed value needs a new process);
 * the key is kept in memory only.
 */
export function optionsKey(o: AgentOptions | null | undefined, t: TurnOptions | undefined): string {
  const schema = outputSchemaOf(o, t);
  if (!o && !schema) return '';
  return JSON.stringify([o ?? null, schema]);
}
