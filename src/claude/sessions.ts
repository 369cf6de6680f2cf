/**
 * @module claude/sessions
 * The SDK's own session functions, each called with the session's `dir` (its cwd) so the
 * SDK finds the right project folder. The SDK reads CLAUDE_CONFIG_DIR from this process's
 * environment, so `bindConfigDir` must run before any of them.
 */
import {
  archiveSession,
  deleteSession,
  forkSession,
  getSessionInfo,
  getSessionMessages,
  listSessions,
  renameSession,
  tagSession,
  unarchiveSession,
  type SDKSessionInfo,
  type SessionMessage,
} from '@anthropic-ai/claude-agent-sdk';

export type { SDKSessionInfo, SessionMessage };

/** Points the SDK's session functions at the server's CLAUDE_CONFIG_DIR (process-wide, once at start). */
export function bindConfigDir(dir: string): void {
  process.env.CLAUDE_CONFIG_DIR = dir;
}

export const claudeSessions = {
  info: (id: string, cwd: string): Promise<SDKSessionInfo | undefined> => getSessionInfo(id, { dir: cwd }),
  messages: (id: string, cwd: string, page: { limit: number; offset: number }): Promise<SessionMessage[]> =>
    getSessionMessages(id, { dir: cwd, limit: page.limit, offset: page.offset }),
  /** Sessions whose transcripts sit in the project folder of `cwd` (or everywhere, without it). */
  list: (opts: { cwd?: string; limit?: number }): Promise<SDKSessionInfo[]> =>
    listSessions({ ...(opts.cwd ? { dir: opts.cwd, includeWorktrees: false } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }),
  rename: (id: string, cwd: string, title: string): Promise<void> => renameSession(id, title, { dir: cwd }),
  tag: (id: string, cwd: string, tag: string | null): Promise<void> => tagSession(id, tag, { dir: cwd }),
  archive: (id: string, cwd: string): Promise<void> => archiveSession(id, { dir: cwd }),
  unarchive: (id: string, cwd: string): Promise<void> => unarchiveSession(id, { dir: cwd }),
  remove: (id: string, cwd: string): Promise<void> => deleteSession(id, { dir: cwd }),
  fork: async (id: string, cwd: string, opts: { upToMessageId?: string | undefined; title?: string | undefined }): Promise<string> => {
    const r = await forkSession(id, { dir: cwd, ...(opts.upToMessageId ? { upToMessageId: opts.upToMessageId } : {}), ...(opts.title ? { title: opts.title } : {}) });
    return r.sessionId;
  },
};
export type ClaudeSessions = typeof claudeSessions;
