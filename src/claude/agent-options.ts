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

/**
 * Prefixes of variables that steer the CLI, a runtime (Node, Python, Perl, Ruby, Java, .NET), a
 * package tool, git, the shell, the loader, the C library or a proxy: never a user's to set, whatever
 * AGENT_ENV_ALLOWED says (each can make a process outside the sandbox load code of the user's).
 */
const RESERVED_PREFIXES = [
  'ANTHROPIC_',
  'CLAUDE',
  'NODE_',
  'NPM_',
  'YARN_',
  'PNPM_',
  'COREPACK_',
  'BUN_',
  'DENO_',
  'LD_',
  'DYLD_',
  'MCP_',
  'OTEL_',
  'DISABLE_',
  'ENABLE_',
  'USE_BUILTIN',
  'RIPGREP',
  'GIT_',
  'XDG_',
  'PYTHON',
  'PIP_',
  'UV_',
  'VIRTUAL_ENV',
  'CONDA',
  'PERL',
  'RUBY',
  'GEM_',
  'BUNDLE_',
  'JAVA_',
  '_JAVA',
  'JDK_',
  'CLASSPATH',
  'DOTNET_',
  'CORECLR_',
  'GCONV',
  'OPENSSL_',
  'SSL_',
  'MALLOC_',
  'GLIBC_',
  'BASH_',
  'PS4',
  'SHELLOPTS',
  'ZDOTDIR',
  'CSS_MCP_',
];
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
  'ENV',
  'IFS',
  'CDPATH',
  'PROMPT_COMMAND',
  'LOCPATH',
  'NLSPATH',
  'HOSTALIASES',
  'RESOLV_CONF',
  'LOCALDOMAIN',
  'RES_OPTIONS',
  'INPUTRC',
  'TERMINFO',
  'EDITOR',
  'VISUAL',
  'PAGER',
  'LESSOPEN',
  'LESSCLOSE',
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

/** The names of the agent's secret variables: the CLI has them, the commands it runs in the sandbox do not. */
export const secretEnvNames = (o: AgentOptions | null | undefined): string[] =>
  Object.entries(o?.env ?? {}).flatMap(([k, v]) => (typeof v === 'string' ? [] : [k]));

/**
 * How a stdio MCP server is started: through a launcher of the server's (`script`, run by `node`),
 * which gives it a clean environment (PATH, a home and TMPDIR of its own under `home`, and only the
 * variables the agent gave it: not the model's key, not the CLI's settings) and starts it in that home
 * (not in the user's folder, where the user could plant files it would read).
 */
export interface McpLauncher {
  node: string;
  script: string;
  /** A folder of the server's for this session's MCP servers (created by the launcher). */
  home: string;
}

/** The launcher's source, written by the runner where the sandbox cannot reach. */
export const MCP_LAUNCHER_SOURCE = `// Written by claude-session-server: starts an agent's stdio MCP server with a clean environment.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
const [cmd, ...args] = process.argv.slice(2);
const home = process.env.CSS_MCP_HOME;
const keep = (process.env.CSS_MCP_KEEP || '').split(',').filter(Boolean);
fs.mkdirSync(home + '/tmp', { recursive: true, mode: 0o700 });
const env = { PATH: process.env.PATH || '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', HOME: home, TMPDIR: home + '/tmp' };
for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k];
const child = spawn(cmd, args, { stdio: 'inherit', env, cwd: home });
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
child.on('error', (e) => { process.stderr.write('cannot start ' + cmd + ': ' + e.message + '\\n'); process.exit(127); });
child.on('exit', (code, signal) => (signal ? process.kill(process.pid, signal) : process.exit(code ?? 1)));
`;

/** What a turn adds to its session's options. */
export interface TurnOptions {
  /** The turn's own output schema (else the session's). */
  outputSchema?: Record<string, unknown> | null | undefined;
}

/** The output schema a turn runs with: its own, else its session's. */
export const outputSchemaOf = (o: AgentOptions | null | undefined, t: TurnOptions | undefined): Record<string, unknown> | null =>
  t?.outputSchema ?? o?.output_schema ?? null;

/** The SDK options that carry the agent options (the host's own come first; `disallowed` adds to its list). */
export function agentSdkOptions(
  o: AgentOptions | null | undefined,
  t: TurnOptions | undefined,
  host: { disallowed: string[] | undefined; launcher: McpLauncher },
): Partial<Options> {
  const hostDisallowed = host.disallowed;
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
          ? {
              type: 'stdio',
              command: host.launcher.node,
              args: [host.launcher.script, s.command, ...(s.args ?? [])],
              env: { ...values(s.env), CSS_MCP_KEEP: Object.keys(s.env ?? {}).join(','), CSS_MCP_HOME: host.launcher.home },
              alwaysLoad: true,
            }
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
