/**
 * @module permissions/waiters
 * What waits for a request to be decided, in this process: a turn whose tool call was deferred,
 * or the CLI's own permission prompt. Answered when the request is decided here, when another
 * replica's notice arrives (`recheck`), or when everything looks again (`recheckAll`).
 */
import type { PermissionRepository, PermissionRow } from '../storage/permissions-repo.js';

/** How a deferred tool call was settled. */
export type Settlement = 'allowed' | 'denied' | 'expired';

/** A decided request, or a stand-in for one (no request: allowed; vanished: denied). */
type Settled = Pick<PermissionRow, 'session_id' | 'tool_use_id' | 'status'> & { request_id?: string };

export interface Settlements {
  /** Resolves once the request for this tool call is settled (at once if it already is, or if there is none). */
  settled(sessionId: string, toolUseId: string): Promise<Settlement>;
  /** Answers what waits for a decided request. */
  settle(row: Settled): void;
  /** Reads the request again if something here waits for it. */
  recheck(sessionId: string, toolUseId: string): Promise<void>;
  /** Everything waiting here reads its request again (a notice may have been lost). */
  recheckAll(): Promise<void>;
}

/** `onSettle` is told of each settled request (its expiry timer stops). */
export function createSettlements(repo: PermissionRepository, onSettle: (requestId: string) => void): Settlements {
  const waiters = new Map<string, Array<(s: Settlement) => void>>();
  const key = (sessionId: string, toolUseId: string) => `${sessionId}\u0000${toolUseId}`;

  const s: Settlements = {
    settle(row) {
      const k = key(row.session_id, row.tool_use_id);
      const ws = waiters.get(k) ?? [];
      waiters.delete(k);
      if (row.request_id) onSettle(row.request_id);
      const how: Settlement = row.status === 'allowed' ? 'allowed' : row.status === 'expired' ? 'expired' : 'denied';
      for (const w of ws) w(how);
    },
    async settled(sessionId, toolUseId) {
      const k = key(sessionId, toolUseId);
      const p = new Promise<Settlement>((res) => {
        const list = waiters.get(k) ?? [];
        list.push(res);
        waiters.set(k, list);
      });
      const row = await repo.byToolUse(sessionId, toolUseId);
      // No request (the hook let it through): nothing to wait for.
      if (!row) s.settle({ session_id: sessionId, tool_use_id: toolUseId, status: 'allowed' });
      else if (row.status !== 'pending') s.settle(row);
      return p;
    },
    async recheck(sessionId, toolUseId) {
      if (!waiters.has(key(sessionId, toolUseId))) return;
      const row = await repo.byToolUse(sessionId, toolUseId);
      if (row && row.status !== 'pending') s.settle(row);
    },
    async recheckAll() {
      for (const k of Array.from(waiters.keys())) {
        const [sessionId, toolUseId] = k.split('\u0000') as [string, string];
        const row = await repo.byToolUse(sessionId, toolUseId);
        if (!row || row.status !== 'pending') s.settle(row ?? { session_id: sessionId, tool_use_id: toolUseId, status: 'denied' });
      }
    },
  };
  return s;
}
