/**
 * @module claude/runner
 * Runs one turn of a session through the SDK's `query()`, with every option the server
 * depends on set explicitly (cwd, permission mode, isolation from host settings, verbatim
 * prompts, a private TMPDIR, the model endpoint). Keeps every live Query so that shutdown
 * can close them all: no CLI process outlives the server.
 */
import fs from 'node:fs';
import { query, type Options, type Query, type SDKMessage } from '@anthropic-ai/claude-agent-sdk';
import { AppError } from '../errors.js';
import type { PermissionMode } from './permission-mode.js';

/** How the CLI reaches a model. */
export interface ModelEndpoint {
  backend: 'anthropic' | 'offline';
  baseUrl?: string | undefined;
  apiKey?: string | undefined;
  authToken?: string | undefined;
}

export interface RunnerOptions {
  configDir: string;
  /** Private TMPDIR for CLI processes (resume copies land there; swept at start). */
  tmpDir: string;
  model: ModelEndpoint;
  /** Operator opt-in: IS_SANDBOX=1 for the CLI, which allows bypassPermissions as root. */
  sandboxOptIn: boolean;
  turnTimeoutMs: number;
  /** Called with each line the CLI writes on stderr. */
  onStderr?: (line: string) => void;
}

export interface TurnSpec {
  sessionId: string;
  cwd: string;
  prompt: string;
  /** false for the first turn of a session (the CLI creates it with this id). */
  resume: boolean;
  permissionMode: PermissionMode;
  model?: string | null | undefined;
  systemPrompt?: string | null | undefined;
  /** Title for a new session. */
  title?: string | null | undefined;
  /** Receives every SDK message as it arrives. */
  onMessage?: (m: SDKMessage) => void;
}

export interface TurnOutcome {
  status: 'succeeded' | 'failed' | 'interrupted';
  result: string | null;
  error: { code: string; message: string } | null;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  durationMs: number;
  /** The session id the CLI reported (the one we chose). */
  sessionId: string | null;
}

export interface ClaudeRunner {
  /** Runs a turn to its end. Throws AppError SESSION_NOT_FOUND when the CLI does not know a resumed id. */
  runTurn(spec: TurnSpec): Promise<TurnOutcome>;
  /** Interrupts the running turn of a session; false when none runs here. */
  interrupt(sessionId: string): Promise<boolean>;
  /** Number of live Query objects (CLI processes). */
  readonly active: number;
  /** Closes every live Query and ends its CLI process. */
  closeAll(): Promise<void>;
}

const NOT_FOUND = /No conversation found with session ID/i;

/** The environment of every CLI process: the server's, plus what the CLI must see. */
export function childEnv(o: Pick<RunnerOptions, 'configDir' | 'tmpDir' | 'model' | 'sandboxOptIn'>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    CLAUDE_CONFIG_DIR: o.configDir,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
    TMPDIR: o.tmpDir,
    CLAUDE_AGENT_SDK_CLIENT_APP: 'claude-session-server',
  };
  delete env.IS_SANDBOX;
  if (o.sandboxOptIn) env.IS_SANDBOX = '1';
  if (o.model.backend === 'offline') {
    env.ANTHROPIC_BASE_URL = o.model.baseUrl;
    env.ANTHROPIC_API_KEY = 'offline-model';
    delete env.ANTHROPIC_AUTH_TOKEN;
  } else {
    if (o.model.baseUrl) env.ANTHROPIC_BASE_URL = o.model.baseUrl;
    if (o.model.apiKey) env.ANTHROPIC_API_KEY = o.model.apiKey;
    if (o.model.authToken) env.ANTHROPIC_AUTH_TOKEN = o.model.authToken;
  }
  return env;
}

export function createClaudeRunner(opts: RunnerOptions): ClaudeRunner {
  fs.mkdirSync(opts.tmpDir, { recursive: true });
  const env = childEnv(opts);
  const live = new Map<string, Query>();
  /** Sessions whose Query was closed by closeAll (shutdown), not ended by the CLI. */
  const closedByUs = new Set<string>();

  function buildOptions(spec: TurnSpec): Options {
    const o: Options = {
      cwd: spec.cwd,
      permissionMode: spec.permissionMode,
      settingSources: [],
      verbatimPrompts: true,
      env,
      stderr: (data) => {
        for (const line of data.split('\n')) if (line.trim()) opts.onStderr?.(line);
      },
    };
    if (spec.permissionMode === 'bypassPermissions') o.allowDangerouslySkipPermissions = true;
    if (spec.resume) o.resume = spec.sessionId;
    else {
      o.sessionId = spec.sessionId;
      if (spec.title) o.title = spec.title;
    }
    if (spec.model) o.model = spec.model;
    if (spec.systemPrompt) o.systemPrompt = { type: 'preset', preset: 'claude_code', append: spec.systemPrompt };
    return o;
  }

  return {
    get active() {
      return live.size;
    },

    async runTurn(spec) {
      const started = Date.now();
      const q = query({ prompt: spec.prompt, options: buildOptions(spec) });
      live.set(spec.sessionId, q);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        q.interrupt().catch(() => q.close());
      }, opts.turnTimeoutMs);
      let resultMsg: Extract<SDKMessage, { type: 'result' }> | undefined;
      let reportedId: string | null = null;
      let notFound = false;
      let thrown: unknown;
      try {
        for await (const m of q) {
          if ('session_id' in m && typeof m.session_id === 'string') reportedId = m.session_id;
          spec.onMessage?.(m);
          if (m.type === 'result') {
            resultMsg = m;
            if (m.is_error && m.subtype !== 'success' && m.errors?.some((e) => NOT_FOUND.test(e))) notFound = true;
            break;
          }
        }
      } catch (err) {
        thrown = err;
        if (NOT_FOUND.test(String((err as Error)?.message ?? err))) notFound = true;
      } finally {
        clearTimeout(timer);
        live.delete(spec.sessionId);
        q.close();
      }
      if (notFound) {
        throw new AppError('SESSION_NOT_FOUND', `the Claude Code CLI has no conversation with session id ${spec.sessionId} for ${spec.cwd}`);
      }
      const durationMs = Date.now() - started;
      const usage = resultMsg?.usage;
      const base = {
        costUsd: resultMsg?.total_cost_usd ?? 0,
        inputTokens: usage?.input_tokens ?? 0,
        outputTokens: usage?.output_tokens ?? 0,
        durationMs,
        sessionId: reportedId,
      };
      if (closedByUs.delete(spec.sessionId)) {
        return { ...base, status: 'interrupted', result: null, error: { code: 'SERVER_SHUTDOWN', message: 'the server shut down while this turn was running' } };
      }
      if (timedOut) {
        return { ...base, status: 'failed', result: null, error: { code: 'TURN_TIMEOUT', message: `the turn ran longer than ${opts.turnTimeoutMs} ms and was stopped` } };
      }
      if (!resultMsg) {
        const message = thrown ? String((thrown as Error).message ?? thrown) : 'the CLI ended without a result';
        return { ...base, status: 'failed', result: null, error: { code: 'CLI_ERROR', message } };
      }
      if (resultMsg.subtype === 'success' && !resultMsg.is_error) {
        return { ...base, status: 'succeeded', result: resultMsg.result, error: null };
      }
      const text = resultMsg.subtype === 'success' ? resultMsg.result : (resultMsg.errors ?? []).join('; ') || resultMsg.subtype;
      if (resultMsg.subtype === 'error_during_execution' && /interrupt/i.test(text)) {
        return { ...base, status: 'interrupted', result: null, error: { code: 'INTERRUPTED', message: text } };
      }
      return { ...base, status: 'failed', result: resultMsg.subtype === 'success' ? resultMsg.result : null, error: { code: resultMsg.subtype === 'success' ? 'MODEL_ERROR' : resultMsg.subtype.toUpperCase(), message: text } };
    },

    async interrupt(sessionId) {
      const q = live.get(sessionId);
      if (!q) return false;
      await q.interrupt();
      return true;
    },

    async closeAll() {
      const all = [...live.entries()];
      live.clear();
      for (const [id, q] of all) {
        closedByUs.add(id);
        q.close();
      }
    },
  };
}

/** Removes what CLI processes of an earlier run left in the private TMPDIR. */
export function sweepTmpDir(tmpDir: string): void {
  fs.rmSync(tmpDir, { recursive: true, force: true });
  fs.mkdirSync(tmpDir, { recursive: true });
}
