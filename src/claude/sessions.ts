/**
 * @module claude/sessions
 * The SDK's own session functions, each called with the session's `dir` (its cwd) so the
 * SDK finds the right project folder. The SDK reads CLAUDE_CONFIG_DIR from this process's
 * environment, so `bindConfigDir` must run before any of them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { projectDirName, transcriptPath } from './paths.js';
import { boundaryMessage, isBoundary, messagesBefore, parseTranscript, type TranscriptEntry } from './history.js';
import {
  archiveSession,
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
/** Whole conversations kept: at most this many transcript bytes in all, none over a quarter of it. */
const WHOLE_CACHE_BYTES = 64 * 1024 * 1024;

/** Points the SDK's session functions at the server's CLAUDE_CONFIG_DIR (process-wide, once at start). */
export function bindConfigDir(dir: string): void {
  process.env.CLAUDE_CONFIG_DIR = dir;
}

/**
 * The session functions. With a transcript store (several replicas), transcripts are read and
 * changed there, where every replica's turns land; the archive mark, which the SDK keeps only
 * beside a local transcript, is set where a local transcript exists.
 */
export function claudeSessionFunctions(
  ownConfigDir: string,
  shared?: {
    store: SessionStore;
    has(sessionId: string): Promise<boolean>;
    /** The entries of a stored transcript whose text contains `text`. */
    entriesContaining(key: { projectKey: string; sessionId: string }, text: string): Promise<unknown[]>;
  },
) {
  const store = shared?.store;
  const local = (id: string, cwd: string) => fs.existsSync(transcriptPath(configDir(), cwd, id));
  /**
   * Whether the session's transcript exists; with the store, one found only on this disk (made
   * before the store was on, or imported from a terminal) is copied into it first.
   */
  const ensureShared = async (id: string, cwd: string): Promise<boolean> => {
    if (!shared) return local(id, cwd);
    if (await shared.has(id)) return true;
    if (!local(id, cwd)) return false;
    await importSessionToStore(id, shared.store, { dir: cwd });
    return true;
  };
  const where = async (id: string, cwd: string) => {
    if (!store) return { dir: cwd };
    await ensureShared(id, cwd);
    return { dir: cwd, sessionStore: store };
  };
  const localOnly = async (id: string, cwd: string, fn: () => Promise<void>) => {
    if (store && !local(id, cwd)) return;
    await fn();
  };
  const wholeCache = new Map<string, { key: string; messages: SessionMessage[]; bytes: number }>();
  const self = {
    ensureShared,
    /** Whether the session's transcript exists: on this disk, or in the transcript store. */
    exists: async (id: string, cwd: string): Promise<boolean> => local(id, cwd) || (shared ? await shared.has(id) : false),
    info: async (id: string, cwd: string): Promise<SDKSessionInfo | undefined> => getSessionInfo(id, await where(id, cwd)),
    /**
     * A page of the whole conversation. Before any compaction this is the SDK's own page; after
     * one, the SDK's messages since the last compaction follow the older ones (claude/history.ts),
     * each compaction marked by a `system` message of subtype `compact_boundary`.
     */
    messages: async (id: string, cwd: string, page: { limit: number; offset: number }): Promise<SessionMessage[]> => {
      const at = await where(id, cwd);
      const key = { projectKey: projectDirName(cwd), sessionId: id };
      const file = transcriptPath(ownConfigDir, cwd, id);
      // Read once, only when a compaction happened: the entries the SDK does not reach.
      let entries: TranscriptEntry[];
      const sdkPage = () => getSessionMessages(id, { ...at, limit: page.limit, offset: page.offset });
      if (shared) {
        if ((await shared.entriesContaining(key, '"compact_boundary"')).length === 0) return sdkPage();
        entries = (await shared.store.load(key)) ?? [];
      } else {
        const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
        if (!text.includes('"compact_boundary"')) return sdkPage();
        entries = parseTranscript(text);
      }
      // (The text matched; a prompt or a tool's output may hold the word without a compaction.)
      const boundaries = new Map(entries.filter((e) => isBoundary(e) && !e.isSidechain && e.uuid).map((e) => [e.uuid, e]));
      if (boundaries.size === 0) return sdkPage();
      const recent = await getSessionMessages(id, { ...at, includeSystemMessages: true });
      // Of the system messages, the compactions are kept (marked); the CLI's other notices are not part of the conversation.
      const kept: SessionMessage[] = recent
        .filter((m) => m.type !== 'system' || boundaries.has(m.uuid))
        .map((m) => (m.type === 'system' ? boundaryMessage(boundaries.get(m.uuid)!, id) : m));
      const first = kept.find((m) => m.type === 'system');
      // (Were the SDK to leave the boundary out, the newest one in the file is where its messages begin.)
      const from = first ? boundaries.get(first.uuid)! : [...boundaries.values()].at(-1)!;
      const earlier = [...messagesBefore(entries, from, id), ...(first ? [] : [boundaryMessage(from, id)])];
      const seen = new Set<string>();
      const whole = [...earlier, ...kept].filter((m) => !seen.has(m.uuid) && Boolean(seen.add(m.uuid)));
      return whole.slice(page.offset, page.offset + page.limit);
    },
    /**
     * The whole conversation (what a page counted from the newest reads). A local transcript's is kept
     * for a few sessions while the file is unchanged (same size and time): a person scrolling up a
     * long session, and every tab reading the newest page when a turn ends, parse it once.
     */
    allMessages: async (id: string, cwd: string): Promise<SessionMessage[]> => {
      const file = transcriptPath(ownConfigDir, cwd, id);
      const st = shared ? null : await fs.promises.stat(file).catch(() => null);
      const key = st && st.size <= WHOLE_CACHE_BYTES / 4 ? `${file}\0${st.size}\0${st.mtimeMs}` : null;
      const hit = key ? wholeCache.get(file) : undefined;
      if (hit && hit.key === key) {
        wholeCache.delete(file);
        wholeCache.set(file, hit);
        return hit.messages;
      }
      const messages = await self.messages(id, cwd, { limit: Number.MAX_SAFE_INTEGER, offset: 0 });
      if (key && st) {
        wholeCache.delete(file);
        wholeCache.set(file, { key, messages, bytes: st.size });
        let total = 0;
        for (const v of wholeCache.values()) total += v.bytes;
        for (const [k, v] of wholeCache) {
          if (total <= WHOLE_CACHE_BYTES) break;
          wholeCache.delete(k);
          total -= v.bytes;
        }
      }
      return messages;
    },
    /** Sessions whose transcripts sit in the project folder of `cwd` (or everywhere, without it), on this disk. */
    list: (opts: { cwd?: string; limit?: number }): Promise<SDKSessionInfo[]> =>
      listSessions({ ...(opts.cwd ? { dir: opts.cwd, includeWorktrees: false } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }),
    rename: async (id: string, cwd: string, title: string): Promise<void> => renameSession(id, title, await where(id, cwd)),
    tag: async (id: string, cwd: string, tag: string | null): Promise<void> => tagSession(id, tag, await where(id, cwd)),
    archive: (id: string, cwd: string): Promise<void> => localOnly(id, cwd, () => archiveSession(id, { dir: cwd })),
    unarchive: (id: string, cwd: string): Promise<void> => localOnly(id, cwd, () => unarchiveSession(id, { dir: cwd })),
    /** Removes what the CLI keeps of a session beside its transcript (file checkpoints), on this disk. */
    removeSideFiles: async (id: string): Promise<void> => {
      await fs.promises.rm(path.join(ownConfigDir, 'file-history', id), { recursive: true, force: true });
    },
    /**
     * Removes this disk's copy of a transcript and its subagent transcripts, if it has them: what
     * the SDK's deleteSession removes, under this server's own config dir (the SDK's functions read
     * the process's CLAUDE_CONFIG_DIR, which replicas sharing one process in tests do not share).
     */
    removeLocal: async (id: string, cwd: string): Promise<void> => {
      const file = transcriptPath(ownConfigDir, cwd, id);
      wholeCache.delete(file);
      await fs.promises.rm(file, { force: true });
      await fs.promises.rm(path.join(path.dirname(file), id), { recursive: true, force: true });
    },
    fork: async (id: string, cwd: string, opts: { upToMessageId?: string | undefined; title?: string | undefined }): Promise<string> => {
      const r = await forkSession(id, {
        ...(await where(id, cwd)),
        ...(opts.upToMessageId ? { upToMessageId: opts.upToMessageId } : {}),
        ...(opts.title ? { title: opts.title } : {}),
      });
      return r.sessionId;
    },
  };
  return self;
}
export type ClaudeSessions = ReturnType<typeof claudeSessionFunctions>;
