/**
 * @module claude/sessions
 * The SDK's own session functions, each called with the session's `dir` (its cwd) so the
 * SDK finds the right project folder. The SDK reads CLAUDE_CONFIG_DIR from this process's
 * environment, so `bindConfigDir` must run before any of them.
 */
import fs from 'node:fs';
import { transcriptPath } from './paths.js';
import {
  archiveSession,
  deleteSession,
  forkSession,
  getSessionInfo,
  importSessionToStore,
  getSessionMessages,
  listSessions,
  renameSession,
  tagSession,
  unarchiveSession,
  type SDKSessionInfo,
  type SessionMessage,
  type SessionStore,
} from '@anthropic-ai/claude-agent-sdk';

export type { SDKSessionInfo, SessionMessage };

const configDir = () => process.env.CLAUDE_CONFIG_DIR ?? '';

/** Points the SDK's session functions at the server's CLAUDE_CONFIG_DIR (process-wide, once at start). */
export function bindConfigDir(dir: string): void {
  process.env.CLAUDE_CONFIG_DIR = dir;
}

/**
 * The session functions. With a transcript store (several replicas), transcripts are read and
 * changed there, where every replica's turns land; the archive mark, which the SDK keeps only
 * beside a local transcript, is set where a local transcript exists.
 */
export function claudeSessionFunctions(store?: SessionStore) {
  const where = (cwd: string) => (store ? { dir: cwd, sessionStore: store } : { dir: cwd });
  const localOnly = async (id: string, cwd: string, fn: () => Promise<void>) => {
    if (store && !fs.existsSync(transcriptPath(configDir(), cwd, id))) return;
    await fn();
  };
  return {
    info: (id: string, cwd: string): Promise<SDKSessionInfo | undefined> => getSessionInfo(id, where(cwd)),
    messages: (id: string, cwd: string, page: { limit: number; offset: number }): Promise<SessionMessage[]> =>
      getSessionMessages(id, { ...where(cwd), limit: page.limit, offset: page.offset }),
    /** Sessions whose transcripts sit in the project folder of `cwd` (or everywhere, without it), on this disk. */
    list: (opts: { cwd?: string; limit?: number }): Promise<SDKSessionInfo[]> =>
      listSessions({ ...(opts.cwd ? { dir: opts.cwd, includeWorktrees: false } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }),
    rename: (id: string, cwd: string, title: string): Promise<void> => renameSession(id, title, where(cwd)),
    tag: (id: string, cwd: string, tag: string | null): Promise<void> => tagSession(id, tag, where(cwd)),
    archive: (id: string, cwd: string): Promise<void> => localOnly(id, cwd, () => archiveSession(id, { dir: cwd })),
    unarchive: (id: string, cwd: string): Promise<void> => localOnly(id, cwd, () => unarchiveSession(id, { dir: cwd })),
    remove: async (id: string, cwd: string): Promise<void> => {
      await deleteSession(id, where(cwd));
      // The store's copy is gone; this disk's copy (if this replica ran it) goes too.
      if (store) await localOnly(id, cwd, () => deleteSession(id, { dir: cwd }));
    },
    /** With a transcript store: copies a transcript found on this disk into it, so every replica can resume it. */
    share: async (id: string, cwd: string): Promise<void> => {
      if (store) await importSessionToStore(id, store, { dir: cwd });
    },
    fork: async (id: string, cwd: string, opts: { upToMessageId?: string | undefined; title?: string | undefined }): Promise<string> => {
      const r = await forkSession(id, { ...where(cwd), ...(opts.upToMessageId ? { upToMessageId: opts.upToMessageId } : {}), ...(opts.title ? { title: opts.title } : {}) });
      return r.sessionId;
    },
  };
}
export type ClaudeSessions = ReturnType<typeof claudeSessionFunctions>;
