/**
 * @module sessions/fork-point
 * Where a fork ends: taken while a turn runs, at the last finished turn (so that the fork does not
 * hold the running turn's prompt without its answer); taken before a turn (rewind with fork), just
 * before that turn's prompt.
 */
import { AppError } from '../errors.js';
import type { ClaudeSessions, SessionMessage } from '../claude/sessions.js';
import type { SessionRow } from '../storage/sessions-repo.js';
import type { TurnRepository, TurnRow } from '../storage/turns-repo.js';

/**
 * With a turn running: the uuid of the last message before its prompt in the transcript (the end
 * of the last finished turn); undefined when none runs or its prompt is not written yet.
 */
export async function lastFinishedMessage(
  d: { turns: TurnRepository; claude: Pick<ClaudeSessions, 'messages'> },
  row: SessionRow,
): Promise<string | undefined> {
  const runningId = (await d.turns.runningBySession([row.session_id])).get(row.session_id);
  const running = runningId ? await d.turns.get(runningId) : undefined;
  if (!running) return undefined;
  const at = await messageBeforeTurn(d, row, running);
  // Not written yet: the fork is bounded at what the transcript holds now (the CLI may write it meanwhile).
  if (at.found === false) return at.last;
  if (at.uuid === null)
    throw new AppError('SESSION_BUSY', `session ${row.session_id} has no finished turn to fork from yet; fork it when its first turn has ended`);
  return at.uuid;
}

/**
 * Where turn `t`'s prompt is in the session's transcript: the uuid of the last message before it
 * (null: nothing precedes it, it opened the conversation), or not found (with the transcript's
 * last message).
 */
export async function messageBeforeTurn(
  d: { turns: TurnRepository; claude: Pick<ClaudeSessions, 'messages'> },
  row: SessionRow,
  t: TurnRow,
): Promise<{ found: true; uuid: string | null } | { found: false; last: string | undefined }> {
  const all = await d.claude.messages(row.session_id, row.cwd, { limit: 1_000_000_000, offset: 0 });
  // A prompt is a user message with something besides tool results (those are the CLI's, mid-turn);
  // its text is its text blocks joined as the turn stored them ('\n\n': turns/prompt.ts).
  const promptText = (m: SessionMessage): string | null => {
    if (m.type !== 'user') return null;
    const c = (m.message as { content?: unknown } | null)?.content;
    if (typeof c === 'string') return c;
    if (!Array.isArray(c)) return null;
    const blocks = c as Array<{ type?: string; text?: string }>;
    if (!blocks.some((b) => b.type !== 'tool_result')) return null;
    return blocks
      .filter((b) => b.type === 'text')
      .map((b) => b.text ?? '')
      .join('\n\n');
  };
  // The same prompt may have been sent before: this turn's is the one after those of the
  // earlier turns that reached the CLI.
  const prompt = t.prompt.trim();
  const earlier = (await d.turns.listBySession(row.session_id, { limit: 100_000 })).filter(
    (x) => x.seq < t.seq && x.started_at !== null && x.prompt.trim() === prompt,
  ).length;
  const matches = all.flatMap((m, i) => (promptText(m)?.trim() === prompt ? [i] : []));
  if (matches.length <= earlier) return { found: false, last: [...all].reverse().find((m) => m.type !== 'system')?.uuid };
  const before = all
    .slice(0, matches[earlier])
    .reverse()
    .find((m) => m.type !== 'system');
  return { found: true, uuid: before?.uuid ?? null };
}
