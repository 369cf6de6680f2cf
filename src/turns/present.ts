/**
 * @module turns/present
 * Turn rows as the API shows them.
 */
import type { TurnRow } from '../storage/turns-repo.js';
import type { Turn } from './schemas.js';
import { loadText } from '../storage/text.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());

export function presentTurn(r: TurnRow): Turn {
  return {
    turn_id: r.turn_id,
    session_id: r.session_id,
    status: r.status,
    prompt: r.prompt,
    result: loadText(r.result),
    error: r.error_code ? { code: r.error_code, message: loadText(r.error_message) ?? '' } : null,
    created_at: new Date(Number(r.created_at)).toISOString(),
    started_at: iso(r.started_at),
    finished_at: iso(r.finished_at),
    duration_ms: r.duration_ms === null ? null : Number(r.duration_ms),
    cost_usd: r.cost_usd === null ? null : Number(r.cost_usd),
    usage: r.input_tokens === null ? null : { input_tokens: Number(r.input_tokens), output_tokens: Number(r.output_tokens ?? 0) },
    attachments: r.attachments ? (JSON.parse(r.attachments) as Turn['attachments']) : [],
    structured_output: r.structured_output === null ? null : (JSON.parse(r.structured_output) as unknown),
  };
}
