/**
 * @module webhooks/events
 * Which stored events webhooks are told of: a turn's `done` (turn.finished, in any final status:
 * every way a turn ends goes through it, a restart's SERVER_RESTARTED included) and a
 * `permission_request` (permission.requested). The event log is wrapped, so no caller has to remember.
 */
import type { EventLog } from '../events/log.js';
import type { WebhookEvent } from './schemas.js';

export function tellingWebhooks(events: EventLog, tell: (sessionId: string, type: WebhookEvent, data: unknown) => void): EventLog {
  // Everything else is the log's own (read through, getters included).
  const wrapped = Object.create(events) as EventLog;
  wrapped.append = (sessionId, turnId, type, data) => {
    const e = events.append(sessionId, turnId, type, data);
    if (type === 'done') tell(sessionId, 'turn.finished', data);
    else if (type === 'permission_request') tell(sessionId, 'permission.requested', data);
    return e;
  };
  return wrapped;
}
