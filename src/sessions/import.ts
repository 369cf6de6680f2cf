/**
 * @module sessions/import
 * What an import would adopt: the CLI's sessions in the owner's own folder (or one project of
 * it) whose folder still exists, lies inside the owner's folder, and has its transcript on this
 * disk. Rows are not written here; the service inserts those not known yet.
 */
import fs from 'node:fs';
import type { ClaudeSessions } from '../claude/sessions.js';
import { transcriptPath } from '../claude/paths.js';
import type { SessionRow } from '../storage/sessions-repo.js';
import type { Workspace } from '../workspace/workspace.js';

/** The sessions found under `scope` (a project folder, or null: the whole of the owner's folder), as rows for `userId`. */
export async function importCandidates(
  d: { claude: Pick<ClaudeSessions, 'list'>; configDir: string; own: Pick<Workspace, 'projectOf'> },
  userId: string,
  scope: string | null,
): Promise<SessionRow[]> {
  const found = await d.claude.list(scope ? { cwd: scope } : {});
  const candidates: SessionRow[] = [];
  for (const info of found) {
    let cwd: string | null = info.cwd ?? scope;
    if (!cwd) continue;
    try {
      cwd = fs.realpathSync.native(cwd);
    } catch {
      continue; // its folder is gone: nothing could run there
    }
    // Different folders can share one project folder name: keep only exact matches.
    if (scope && cwd !== scope) continue;
    const project = d.own.projectOf(cwd);
    if (project === null) continue;
    if (!fs.existsSync(transcriptPath(d.configDir, cwd, info.sessionId))) continue;
    const created = info.createdAt ?? info.lastModified;
    candidates.push({
      session_id: info.sessionId,
      user_id: userId,
      session_name: info.customTitle ?? null,
      status: info.archived ? 'archived' : 'active',
      project,
      cwd,
      created_at: created,
      last_active: info.lastModified,
      turn_count: 0,
      total_cost_usd: 0,
      input_tokens: 0,
      output_tokens: 0,
      first_prompt: info.firstPrompt?.slice(0, 1000) ?? null,
      tag: info.tag ?? null,
      permission_mode: 'default',
      model: null,
      system_prompt: null,
      agent_id: null,
      agent_version: null,
      options: null,
      started: 1,
    });
  }
  return candidates;
}
