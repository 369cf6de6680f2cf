/**
 * @module turns/engine/outcome
 * A turn's end as its followers see it: the outcome of a turn that never reached the CLI, and
 * the events that close a turn in the session's log.
 */
import type { TurnOutcome } from '../../claude/runner/index.js';
import type { TurnRow } from '../../storage/turns-repo.js';
import type { EventLog } from '../../events/log.js';
import { presentTurn } from '../present.js';

/** An outcome with no model work behind it. */
export function outcomeWithout(status: TurnOutcome['status'], error: TurnOutcome['error'], durationMs = 0): TurnOutcome {
  return { status, result: null, error, costUsd: 0, inputTokens: 0, outputTokens: 0, durationMs };
}

/** The `error` (unless cancelled), `turn` and `done` events that close a turn in its session's log. */
export async function announceEnd(events: EventLog, row: TurnRow): Promise<void> {
  const t = presentTurn(row);
  if (row.error_code && row.status !== 'cancelled') await events.append(row.session_id, row.turn_id, 'error', t.error);
  await events.append(row.session_id, row.turn_id, 'turn', t);
  await events.append(row.session_id, row.turn_id, 'done', t);
}
