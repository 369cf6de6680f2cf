/**
 * @module storage/schema
 * Table types for Kysely. Times are integer milliseconds since the epoch (compared and
 * paged as numbers on both SQLite and PostgreSQL); the API turns them into ISO strings.
 */
import type { PermissionStatus, SessionStatus, TurnStatus } from '../schemas.js';

export interface SessionsTable {
  session_id: string;
  user_id: string;
  session_name: string | null;
  status: SessionStatus;
  project: string;
  cwd: string;
  created_at: number;
  last_active: number;
  turn_count: number;
  total_cost_usd: number;
  input_tokens: number;
  output_tokens: number;
  first_prompt: string | null;
  tag: string | null;
  permission_mode: string;
  model: string | null;
  /** Unused since agents (0009 moved it into `options` as append_system_prompt). */
  system_prompt: string | null;
  /** The agent the session was made from, and its version (null: none). */
  agent_id: string | null;
  agent_version: number | null;
  /** JSON text of the session's options (claude/agent-options), secret values included; null: none. */
  options: string | null;
  /** 1 once the CLI has written a transcript for this session (first turn, import, fork). */
  started: number;
}

export interface TurnsTable {
  turn_id: string;
  session_id: string;
  user_id: string;
  status: TurnStatus;
  prompt: string;
  /** The permission mode this turn runs with (the session's unless the turn set one). */
  permission_mode: string | null;
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
  cost_usd: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
  /** Order of turns within a session. */
  seq: number;
  /** The server process (replica) that runs or ran it. */
  runner_id: string | null;
  /** JSON text of the prompt's content blocks when it has attachments (null: the prompt is plain text). */
  content: string | null;
  /** JSON text of the attachments' summary: [{type, media_type, bytes}] (null: none). */
  attachments: string | null;
  /** JSON text of the turn's own output schema (null: the session's, if any). */
  output_schema: string | null;
  /** JSON text of the turn's structured result (with an output schema). */
  structured_output: string | null;
  /** The session folder's state before and after the turn (workspace/snapshots tree ids; null: not taken). */
  snapshot_before: string | null;
  snapshot_after: string | null;
}

export interface EventsTable {
  session_id: string;
  /** Monotonic within the session: the SSE event id. */
  seq: number;
  turn_id: string | null;
  type: string;
  /** JSON text. */
  data: string;
  created_at: number;
  /**
   * 0: kept as it is. 1: a token-level partial (`stream_event`), removed a while after its turn
   * ends. 3: a `result` message whose text is folded into its turn row once the turn has ended.
   */
  transient: number;
}

export interface ApiKeysTable {
  key_id: string;
  user_id: string;
  /** SHA-256 of the key, hex. */
  key_hash: string;
  admin: number;
  label: string | null;
  created_at: number;
  revoked_at: number | null;
}

export interface PermissionRequestsTable {
  request_id: string;
  session_id: string;
  turn_id: string;
  user_id: string;
  tool_use_id: string;
  tool_name: string;
  /** JSON text. */
  input: string;
  /** JSON text: the SDK's permission suggestions. */
  suggestions: string;
  status: PermissionStatus;
  scope: 'once' | 'session' | null;
  updated_input: string | null;
  message: string | null;
  decided_by: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
}

export interface SessionRulesTable {
  session_id: string;
  tool_name: string;
  rule_content: string;
  created_at: number;
}

export interface TranscriptEntriesTable {
  project_key: string;
  session_id: string;
  /** '' for the main transcript, else the SDK's subpath (subagents). */
  subpath: string;
  seq: number;
  uuid: string | null;
  /** JSON text of one transcript line. */
  entry: string;
  created_at: number;
}

/** The replica that runs a session, until `expires_at` (the database's clock, ms). */
export interface SessionLeasesTable {
  session_id: string;
  replica_id: string;
  expires_at: number;
}

/** Facts every replica must agree on, written once by the first that needs them. */
export interface ClusterSettingsTable {
  name: string;
  value: string;
}

export interface WebhooksTable {
  webhook_id: string;
  /** The owner (who made it; an admin for one of every user's events). */
  user_id: string;
  /** 1: told of every user's events (made by an admin). */
  all_users: number;
  url: string;
  /** JSON text: the event types it is told of. */
  events: string;
  description: string | null;
  /** The signing secret (`whsec_...`), shown once at creation. */
  secret: string;
  created_at: number;
}

/** One message to one endpoint (the outbox): sent until a 2xx answer, or until it is given up. */
export interface WebhookDeliveriesTable {
  /** Also the message's `webhook-id` (the same on every retry, for the receiver to drop repeats). */
  delivery_id: string;
  webhook_id: string;
  /** The session the event is about (null: none): a purge removes its messages. */
  session_id: string | null;
  event_type: string;
  /** The JSON body sent (what the signature covers). */
  payload: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  /** A replica sending it holds it until then (another takes it up after). */
  claimed_until: number | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  finished_at: number | null;
}

export interface AgentsTable {
  agent_id: string;
  /** The owner; for a shared agent, the admin who made it. */
  user_id: string;
  /** 1: every user may use it (made by an admin). */
  shared: number;
  name: string;
  latest_version: number;
  archived_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface AgentVersionsTable {
  agent_id: string;
  version: number;
  name: string;
  description: string | null;
  /** JSON text of the options, secret values included. */
  config: string;
  created_by: string;
  created_at: number;
}

export interface Database {
  agents: AgentsTable;
  agent_versions: AgentVersionsTable;
  session_leases: SessionLeasesTable;
  cluster_settings: ClusterSettingsTable;
  webhooks: WebhooksTable;
  webhook_deliveries: WebhookDeliveriesTable;
  transcript_entries: TranscriptEntriesTable;
  api_keys: ApiKeysTable;
  permission_requests: PermissionRequestsTable;
  session_rules: SessionRulesTable;
  sessions: SessionsTable;
  turns: TurnsTable;
  events: EventsTable;
}
