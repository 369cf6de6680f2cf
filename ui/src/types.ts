/** The API's resources as the page reads them (the fields it uses). */

export interface Session {
  session_id: string;
  session_name: string | null;
  status: string;
  project: string;
  created_at: string;
  last_active: string;
  turn_count: number;
  running_turn_id: string | null;
  first_prompt: string | null;
  permission_mode: string;
  total_cost_usd: number;
  usage: { input_tokens: number; output_tokens: number };
  agent: { agent_id: string; version: number } | null;
}

export interface Agent {
  agent_id: string;
  name: string;
  version: number;
}

export interface Turn {
  turn_id: string;
  status: string;
  prompt: string;
  result: string | null;
  error: { code: string; message: string } | null;
  finished_at?: string | null;
  duration_ms: number | null;
  cost_usd: number | null;
  usage: { input_tokens: number; output_tokens: number } | null;
  attachments?: Array<{ type: string }>;
}

export interface Approval {
  request_id: string;
  tool_name: string;
  tool_use_id?: string | null;
  status?: string;
  decided_by?: string | null;
  input: Record<string, unknown>;
}

export interface Me {
  user_id: string;
  admin: boolean;
  permission_modes: string[];
}

export const sessionTitle = (s: Session) => s.session_name || s.first_prompt?.slice(0, 60) || 'New session';
