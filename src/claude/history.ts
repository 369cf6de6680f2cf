/**
 * @module claude/history
 * A session's whole conversation across compactions. The SDK's `getSessionMessages` follows the
 * chain of `parentUuid` links back from the newest message, and a compaction starts a new chain: a
 * `compact_boundary` entry with no parent, whose `logicalParentUuid` names the last message before
 * it. The SDK therefore returns only what came after the last compaction. This module walks the
 * older chains the same way (through each boundary's logical parent) so the history can be served
 * whole, with each compaction marked where it happened. A message a compaction kept for context
 * (written again after its summary, with the same uuid) is served once, where it was first said.
 */

/** One transcript line, as much of it as is read here. */
export interface TranscriptEntry {
  type?: string;
  subtype?: string;
  uuid?: string;
  parentUuid?: string | null;
  logicalParentUuid?: string | null;
  isSidechain?: boolean;
  isMeta?: boolean;
  message?: unknown;
  content?: unknown;
  compactMetadata?: unknown;
  timestamp?: string;
}

/** The shape of the SDK's SessionMessage (only `claude/` imports the SDK's types). */
export interface HistoryMessage {
  type: 'user' | 'assistant' | 'system';
  uuid: string;
  session_id: string;
  message: unknown;
  parent_tool_use_id: string | null;
  parent_agent_id: string | null;
}

export const isBoundary = (e: TranscriptEntry) => e.type === 'system' && e.subtype === 'compact_boundary';

/** The mark of a compaction in the history: a system message with the boundary's uuid. */
export function boundaryMessage(e: TranscriptEntry, sessionId: string): HistoryMessage {
  return {
    type: 'system',
    uuid: e.uuid!,
    session_id: sessionId,
    message: {
      role: 'system',
      subtype: 'compact_boundary',
      content: typeof e.content === 'string' ? e.content : 'Conversation compacted',
      compact_metadata: e.compactMetadata ?? null,
      timestamp: e.timestamp ?? null,
    },
    parent_tool_use_id: null,
    parent_agent_id: null,
  };
}

/**
 * The messages before `boundary` (oldest first): each earlier chain back to its start, with the
 * boundaries between them marked. Only the conversation's own user and assistant messages are
 * taken (not side chains or the CLI's meta notes), as the SDK does for the newest chain.
 */
export function messagesBefore(entries: TranscriptEntry[], boundary: TranscriptEntry, sessionId: string): HistoryMessage[] {
  const byUuid = new Map<string, TranscriptEntry>();
  // The first entry of a uuid is the message where it was said; a compaction may write it again
  // (a message it keeps for context) into the chain that follows.
  for (const e of entries) if (e.uuid && !byUuid.has(e.uuid)) byUuid.set(e.uuid, e);
  const out: HistoryMessage[] = [];
  const seen = new Set<string>();
  let cur = boundary.logicalParentUuid ? byUuid.get(boundary.logicalParentUuid) : undefined;
  while (cur && cur.uuid && !seen.has(cur.uuid)) {
    seen.add(cur.uuid);
    if (isBoundary(cur)) {
      out.push(boundaryMessage(cur, sessionId));
      cur = cur.logicalParentUuid ? byUuid.get(cur.logicalParentUuid) : undefined;
      continue;
    }
    if ((cur.type === 'user' || cur.type === 'assistant') && !cur.isSidechain && !cur.isMeta) {
      const toolUse = (cur as { parent_tool_use_id?: string | null }).parent_tool_use_id ?? null;
      out.push({ type: cur.type, uuid: cur.uuid, session_id: sessionId, message: cur.message, parent_tool_use_id: toolUse, parent_agent_id: null });
    }
    cur = cur.parentUuid ? byUuid.get(cur.parentUuid) : undefined;
  }
  return out.reverse();
}

/** The entries of a JSONL transcript's text (a torn last line is skipped). */
export function parseTranscript(text: string): TranscriptEntry[] {
  const out: TranscriptEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as TranscriptEntry);
    } catch {
      // a line being written
    }
  }
  return out;
}
