/**
 * @module claude/runner/query-options
 * The SDK options of every CLI process. Every option the server depends on is set explicitly:
 * isolation from host settings, verbatim prompts, a private TMPDIR, the model endpoint (through
 * the child environment), the approval hook and callback; then the session's own (cwd, mode,
 * resume or new id, model, system prompt) for a cold start or a spare's claim.
 */
import type { Options, SpareProcess } from '@anthropic-ai/claude-agent-sdk';
import type { PreToolUseHookInput, RunnerOptions, TurnSpec } from './types.js';
import { childEnv, sessionTmpDir } from './child-env.js';
import { agentEnv, agentSdkOptions, secretEnvNames, turnBudget, type McpLauncher } from '../agent-options.js';

export interface QueryOptions {
  /** Options every process gets, whatever the session (`sessionId` names it to the callbacks). */
  host(sessionId: () => string): Options;
  /** A cold start of the session's process for this turn. */
  cold(spec: TurnSpec): Options;
  /** What a parked spare is told when the session claims it. */
  claim(spec: TurnSpec): Parameters<SpareProcess['claim']>[0]['options'];
}

/** `onSpawn` learns each process's pid (to end one that answers nothing). */
export function createQueryOptions(
  opts: RunnerOptions,
  onSpawn: (sessionId: string, pid: number) => void,
  launcher: (sessionId: string) => McpLauncher,
): QueryOptions {
  const baseEnv = childEnv(opts);

  function host(sessionId: () => string): Options {
    const o: Options = {
      ...opts.isolation,
      settingSources: [],
      verbatimPrompts: opts.verbatimPrompts ?? true,
      includePartialMessages: true,
      env: { ...baseEnv, TMPDIR: sessionTmpDir(opts.tmpDir, sessionId()) },
      stderr: (data) => {
        for (const line of data.split('\n')) if (line.trim()) opts.onStderr?.(line);
      },
    };
    if (opts.maxBudgetUsd !== undefined) o.maxBudgetUsd = opts.maxBudgetUsd;
    if (opts.sessionStore) o.sessionStore = opts.sessionStore;
    if (opts.processes) {
      const processes = opts.processes;
      o.spawnClaudeCodeProcess = (s) => {
        const child = processes.spawn(s);
        const pid = (child as unknown as { pid?: number }).pid;
        if (pid) onSpawn(sessionId(), pid);
        return child;
      };
    }
    if (opts.onPreToolUse) {
      const hook = opts.onPreToolUse;
      o.hooks = { PreToolUse: [{ hooks: [async (input) => hook(sessionId(), input as PreToolUseHookInput)] }] };
    }
    if (opts.canUseTool) {
      const approver = opts.canUseTool;
      o.canUseTool = (name, input, ctx) => {
        const fn = approver(sessionId());
        if (!fn) return Promise.resolve({ behavior: 'deny', message: 'no approver is attached to this session', toolUseID: ctx.toolUseID });
        return fn(name, input, ctx);
      };
    }
    return o;
  }

  return {
    host,
    cold(spec) {
      const o: Options = { ...host(() => spec.sessionId), cwd: spec.cwd, permissionMode: spec.permissionMode };
      if (spec.permissionMode === 'bypassPermissions') {
        o.allowDangerouslySkipPermissions = true;
        delete o.canUseTool; // never consulted in this mode (the SDK warns when it is set)
      }
      if (spec.resume) o.resume = spec.sessionId;
      else {
        o.sessionId = spec.sessionId;
        if (spec.title) o.title = spec.title;
      }
      if (spec.model) o.model = spec.model;
      Object.assign(
        o,
        agentSdkOptions(spec.options, { outputSchema: spec.outputSchema }, { disallowed: o.disallowedTools, launcher: launcher(spec.sessionId) }),
      );
      // The agent's secret variables are the CLI's and its MCP servers', not the sandboxed commands'.
      const secret = secretEnvNames(spec.options);
      if (secret.length > 0 && o.sandbox) {
        const envVars = [...(o.sandbox.credentials?.envVars ?? []), ...secret.map((name) => ({ name, mode: 'deny' as const }))];
        o.sandbox = { ...o.sandbox, credentials: { ...o.sandbox.credentials, envVars } };
      }
      const budget = turnBudget(opts.maxBudgetUsd, spec.options);
      if (budget !== undefined) o.maxBudgetUsd = budget;
      // The agent's variables, under the server's own (their names were checked on the way in).
      const env = agentEnv(spec.options);
      if (Object.keys(env).length > 0) o.env = { ...env, ...o.env };
      return o;
    },
    claim(spec) {
      return {
        cwd: spec.cwd,
        permissionMode: spec.permissionMode,
        ...(spec.model ? { model: spec.model } : {}),
        ...(spec.options?.append_system_prompt ? { appendSystemPrompt: spec.options.append_system_prompt } : {}),
        ...(spec.title ? { title: spec.title } : {}),
      };
    },
  };
}
