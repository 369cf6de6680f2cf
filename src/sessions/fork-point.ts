/**
 * @module sessions/fork-point
 * Where a fork taken while a turn runs ends: at the last finished turn, so that the fork does not
 * hold the running turn's prompt without its answer.
 */
import { AppError } from '../errors.js';
import type { ClaudeSessions, SessionMessage } from '../claude/sessions.js';
import type { SessionRow } from '../storage/sessions-repo.js';
import type { TurnRepository } from '../storage/turns-repo.js';

/**
 * With a turn running: the uuid of the last message before its prompt in the transcript (the end
 * of the last finished turn); undefined when none runs or its prompt is not written yet.
 */
export async function lastFinishedMessage(
  d: { turns: TurnRepository; claude: Pick<ClaudeSessions, 'messages'> },
  row: SessionRow,
): Promise<string | undefined> {
  const { turns, claude } = d;
  const runningId = (await turns.runningBySession([row.session_id])).get(row.session_id);
  const running = runningId ? await turns.get(runningId) : undefined;
  if (!running) return undefined;
  const all = await claude.messages(row.session_id, row.cwd, { limit: 1_000_000_000, offset: 0 });
  const textOf = (m: SessionMessage) => {
    const c = (m.message as { content?: unknown } | null)?.content;
    if (typeof c === 'string') return c;
    return Array.isArray(c) ? c.map((b: { type?: string; text?: string }) => (b.type === 'text' ? (b.text ?? '') : '')).join('') : '';
  };
  // The same prompt may have been sent before: the running turn's is the one after those of the
  // earlier turns that reached the CLI.
  const prompt = running.prompt.trim();
  const earlier = (await turns.listBySession(row.session_id, { limit: 100_000 })).filter(
    (t) => t.seq < running.seq && t.started_at !== null && t.prompt.trim() === prompt,
  ).length;
  const matches = all.flatMap((m, i) => (m.type === 'user' && textOf(m).trim() === prompt ? [i] : []));
  // Not written yet: the fork is bounded at what the transcript holds now (the CLI may write it meanwhile).
  if (matches.length <= earlier) return [...all].reverse().find((m) => m.type !== 'system')?.uuid;
  const at = matches[earlier]!;
  const before = all
    .slice(0, at)
    .reverse()
    .find((m) => m.type !== 'system');
  if (!before) throw new AppError('SESSION_BUSY', `session ${row.session_id} has no finished turn to fork from yet; fork it when its first turn has ended`);
  return before.uuid;
}
