/**
 * @module auth/access
 * Who may see a session: its owner, or an admin. Anyone else gets the same 404 as for a
 * session that does not exist, so ids of other users' sessions are never confirmed.
 */
import { AppError } from '../errors.js';
import type { SessionRepository, SessionRow } from '../storage/sessions-repo.js';

/** The caller, as the auth layer resolved it. */
export interface Caller {
  userId: string;
  admin: boolean;
}

/** Loads a session the caller may act on, or throws SESSION_NOT_FOUND. */
export async function ownedSession(repo: SessionRepository, caller: Caller, sessionId: string): Promise<SessionRow> {
  const row = await repo.get(sessionId);
  if (!row || (row.user_id !== caller.userId && !caller.admin)) {
    throw new AppError('SESSION_NOT_FOUND', `no session ${sessionId}`);
  }
  return row;
}
