/** The list of sessions: new session, import, search and filters, newest activity first, paged. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ApiError } from './api';
import { ago } from './transcript';
import { sessionTitle, type Agent, type Me, type Session } from './types';

export interface Filters {
  q: string;
  status: '' | 'active' | 'archived';
  project: string;
}
export const DEFAULT_FILTERS: Filters = { q: '', status: 'active', project: '' };

export function Sidebar({
  me,
  sessions,
  more,
  filters,
  selected,
  onFilters,
  onMore,
  onOpen,
  onCreated,
  onImported,
  onError,
}: {
  me: Me | null;
  sessions: Session[];
  more: boolean;
  filters: Filters;
  selected: string | null;
  onFilters: (f: Filters) => void;
  onMore: () => void;
  onOpen: (id: string) => void;
  onCreated: (s: Session) => void;
  onImported: () => void;
  onError: (e: ApiError) => void;
}) {
  const [creating, setCreating] = useState(false);
  const [imported, setImported] = useState<string | null>(null);
  // "5 min ago" stays true: the list is drawn again each minute.
  const [, setMinute] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setMinute((n) => n + 1), 60_000);
    return () => clearInterval(timer);
  }, []);
  const filtered = filters.q !== '' || filters.project !== '' || filters.status !== DEFAULT_FILTERS.status;
  const runImport = async () => {
    try {
      const r = await api<{ imported: number; already_known: number }>('POST', '/v1/sessions/import', {});
      setImported(
        r.imported === 0
          ? `Nothing new to import${r.already_known ? ` (${r.already_known} already here)` : ''}: transcripts of sessions started in your workspace folder from a terminal appear here.`
          : `Imported ${r.imported} session${r.imported === 1 ? '' : 's'}${r.already_known ? ` (${r.already_known} already here)` : ''}.`,
      );
      onImported();
    } catch (e) {
      onError(e as ApiError);
    }
  };
  return (
    <>
      <div class="row">
        <button type="button" class="primary" aria-expanded={creating} onClick={() => setCreating((c) => !c)}>
          New session
        </button>
        <button type="button" onClick={() => void runImport()}>
          Import
        </button>
      </div>
      {imported ? (
        <p class="notice" role="status">
          {imported}{' '}
          <button type="button" class="link" aria-label="Dismiss" onClick={() => setImported(null)}>
            ×
          </button>
        </p>
      ) : null}
      {creating ? (
        <CreateForm
          me={me}
          onCancel={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false);
            onCreated(s);
          }}
          onError={onError}
        />
      ) : null}
      <input
        type="search"
        aria-label="Search sessions"
        placeholder="Search names and first prompts"
        value={filters.q}
        onInput={(e) => onFilters({ ...filters, q: (e.target as HTMLInputElement).value })}
      />
      <div class="row">
        <select
          aria-label="Show"
          value={filters.status}
          onChange={(e) => onFilters({ ...filters, status: (e.target as HTMLSelectElement).value as Filters['status'] })}
        >
          <option value="active">Active</option>
          <option value="archived">Archived</option>
          <option value="">Active and archived</option>
        </select>
        <input
          aria-label="Filter by project"
          placeholder="Project"
          value={filters.project}
          onInput={(e) => onFilters({ ...filters, project: (e.target as HTMLInputElement).value })}
        />
      </div>
      <nav aria-label="Sessions list">
        <ul class="list">
          {sessions.map((s) => (
            <li key={s.session_id}>
              <a
                href={`#/s/${s.session_id}`}
                class={`item ${s.session_id === selected ? 'selected' : ''}`}
                aria-current={s.session_id === selected ? 'page' : undefined}
                onClick={(e) => {
                  e.preventDefault();
                  onOpen(s.session_id);
                }}
              >
                <span class="name">{sessionTitle(s)}</span>
                <span class="meta">
                  {s.running_turn_id ? <span class="running-dot">running · </span> : null}
                  {s.project === '.' ? '' : `${s.project} · `}
                  {s.turn_count} {s.turn_count === 1 ? 'turn' : 'turns'} · <time dateTime={s.last_active}>{ago(s.last_active)}</time>
                  {s.status === 'archived' ? ' · archived' : ''}
                </span>
              </a>
            </li>
          ))}
        </ul>
        {sessions.length === 0 ? (
          filtered ? (
            <div class="empty-list">
              <p>No sessions match.</p>
              <button type="button" class="link" onClick={() => onFilters(DEFAULT_FILTERS)}>
                Clear search and filters
              </button>
            </div>
          ) : (
            <p class="empty-list">No sessions yet: make one with “New session”, or import those started from a terminal.</p>
          )
        ) : null}
        {more ? (
          <button type="button" class="link more" onClick={onMore}>
            Show more sessions
          </button>
        ) : null}
      </nav>
    </>
  );
}

function CreateForm({
  me,
  onCancel,
  onCreated,
  onError,
}: {
  me: Me | null;
  onCancel: () => void;
  onCreated: (s: Session) => void;
  onError: (e: ApiError) => void;
}) {
  const [form, setForm] = useState({ session_name: '', project: '', permission_mode: '', agent_id: '' });
  const [agents, setAgents] = useState<Agent[]>([]);
  const [busy, setBusy] = useState(false);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => {
    first.current?.focus();
    api<{ agents: Agent[] }>('GET', '/v1/agents?limit=200').then((r) => setAgents(r.agents), onError);
  }, []);
  // Only the modes this server accepts (GET /v1/me); "default" is the empty choice.
  const modes = (me?.permission_modes ?? ['default']).filter((m) => form.agent_id || m !== 'default');
  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      // The mode only when the person chose one: an agent's own mode stands otherwise.
      const body: Record<string, string> = form.permission_mode ? { permission_mode: form.permission_mode } : {};
      if (form.agent_id) body.agent_id = form.agent_id;
      if (form.session_name.trim()) body.session_name = form.session_name.trim();
      if (form.project.trim()) body.project = form.project.trim();
      onCreated(await api<Session>('POST', '/v1/sessions', body));
    } catch (err) {
      onError(err as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="create"
      aria-label="New session"
      onSubmit={(e) => void create(e)}
      onKeyDown={(e) => {
        if (e.key === 'Escape') onCancel();
      }}
    >
      <label>
        Session name
        <input
          ref={first}
          placeholder="Optional"
          value={form.session_name}
          onInput={(e) => setForm({ ...form, session_name: (e.target as HTMLInputElement).value })}
        />
      </label>
      <label>
        Project folder
        <input
          placeholder="Optional, inside your workspace"
          value={form.project}
          onInput={(e) => setForm({ ...form, project: (e.target as HTMLInputElement).value })}
        />
      </label>
      <label>
        Agent
        <select value={form.agent_id} onChange={(e) => setForm({ ...form, agent_id: (e.target as HTMLSelectElement).value })}>
          <option value="">No agent</option>
          {agents.map((a) => (
            <option key={a.agent_id} value={a.agent_id}>
              {a.name} (v{a.version})
            </option>
          ))}
        </select>
      </label>
      <label>
        Permission mode
        <select value={form.permission_mode} onChange={(e) => setForm({ ...form, permission_mode: (e.target as HTMLSelectElement).value })}>
          <option value="">{form.agent_id ? "The agent's mode" : 'default (ask before changes)'}</option>
          {modes.map((m) => (
            <option key={m} value={m}>
              {m}
            </option>
          ))}
        </select>
      </label>
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          Create
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
