/**
 * The web page: sign in with a key (or none on a single-user server), list and manage sessions,
 * read a conversation, send prompts, follow the running turn live, answer tool approvals.
 * Over 300 lines for now: the page is rebuilt in components of their own by issue 19 (the web page),
 * which changes nearly every part of it; splitting it before that would be done twice.
 */
import { render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, follow, getKey, setKey } from './api';

/** A content block of a transcript message (text, tool call, tool result; other kinds are not shown). */
interface Block {
  type: string;
  text?: unknown;
  name?: string;
  input?: unknown;
  is_error?: boolean;
  content?: unknown;
  source?: { type?: string; media_type?: string; data?: string };
}
/** A token-level partial of the running turn. */
interface StreamPartial {
  type: 'stream_event';
  event?: { type?: string; delta?: { type?: string; text?: string } };
}
import { Markdown } from './markdown';
import { ChangesCard, FilesPanel, useDrop } from './files';
import './style.css';

interface Session {
  session_id: string;
  session_name: string | null;
  status: string;
  project: string;
  last_active: string;
  turn_count: number;
  running_turn_id: string | null;
  first_prompt: string | null;
  permission_mode: string;
  agent: { agent_id: string; version: number } | null;
}
interface Agent {
  agent_id: string;
  name: string;
  version: number;
}
/** An image or PDF waiting in the composer, as the API takes it. */
interface Attachment {
  name: string;
  type: 'image' | 'document';
  media_type: string;
  data: string;
  url: string;
}
interface Turn {
  turn_id: string;
  status: string;
  prompt: string;
  result: string | null;
}
interface Message {
  type: string;
  uuid: string;
  message: { role: string; content: unknown };
}
interface Approval {
  request_id: string;
  tool_name: string;
  input: Record<string, unknown>;
}

const ATTACHABLE: Record<string, 'image' | 'document'> = {
  'image/png': 'image',
  'image/jpeg': 'image',
  'image/gif': 'image',
  'image/webp': 'image',
  'application/pdf': 'document',
};

/** Files a person pasted or dropped, read as base64 content blocks (others are named in the error). */
async function readAttachments(files: FileList | File[]): Promise<{ ok: Attachment[]; refused: string[] }> {
  const ok: Attachment[] = [];
  const refused: string[] = [];
  for (const f of Array.from(files)) {
    const type = ATTACHABLE[f.type];
    if (!type) {
      refused.push(f.name || f.type || 'file');
      continue;
    }
    const bytes = new Uint8Array(await f.arrayBuffer());
    let bin = '';
    for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    ok.push({ name: f.name || `pasted ${type}`, type, media_type: f.type, data: btoa(bin), url: type === 'image' ? URL.createObjectURL(f) : '' });
  }
  return { ok, refused };
}

const title = (s: Session) => s.session_name || s.first_prompt?.slice(0, 60) || 'New session';

function ErrorBanner({ error, onClose }: { error: ApiError | null; onClose: () => void }) {
  if (!error) return null;
  const hint: Record<string, string> = {
    SESSION_BUSY: 'The session is running a turn. Choose "queue" or "interrupt", or wait.',
    RATE_LIMITED: 'Too many requests: wait a moment.',
    CAPACITY_EXCEEDED: 'The server is at capacity: try again shortly.',
    OFFLINE: 'Check that the server is running.',
    UNAUTHORIZED: 'Sign in with a valid API key.',
  };
  return (
    <div class="error" role="alert">
      <strong>{error.code}</strong> {error.message} {hint[error.code] ? <em>{hint[error.code]}</em> : null}
      <button class="link" onClick={onClose} aria-label="Dismiss error">
        ×
      </button>
    </div>
  );
}

function SignIn({ onDone, failed }: { onDone: () => void; failed: boolean }) {
  const [key, setK] = useState('');
  return (
    <form
      class="signin"
      onSubmit={(e) => {
        e.preventDefault();
        setKey(key.trim());
        onDone();
      }}
    >
      <h1>Claude sessions</h1>
      <label>
        API key
        <input type="password" value={key} onInput={(e) => setK((e.target as HTMLInputElement).value)} autoFocus placeholder="Bearer key" />
      </label>
      <button type="submit">Sign in</button>
      {failed ? (
        <p class="error" role="alert">
          That key was not accepted.
        </p>
      ) : null}
      <p class="muted">The key stays in this tab only.</p>
    </form>
  );
}

/** One transcript message: text as markdown, tool calls and results folded. */
function Bubble({ m }: { m: Message }) {
  const content = m.message?.content;
  const blocks: Block[] = typeof content === 'string' ? [{ type: 'text', text: content }] : Array.isArray(content) ? (content as Block[]) : [];
  const parts = blocks
    .filter((b) => !(b.type === 'text' && String(b.text).trimStart().startsWith('<system-reminder>')))
    .map((b, i) => {
      if (b.type === 'text') return <Markdown key={i} text={String(b.text)} />;
      if (b.type === 'image' && b.source?.type === 'base64')
        return <img key={i} class="attached" alt="An attached image" src={`data:${String(b.source.media_type)};base64,${String(b.source.data)}`} />;
      if (b.type === 'document')
        return (
          <span key={i} class="attached-doc">
            📄 PDF document
          </span>
        );
      if (b.type === 'tool_use')
        return (
          <details key={i} class="tool">
            <summary>Tool call: {b.name}</summary>
            <pre>{JSON.stringify(b.input, null, 2)}</pre>
          </details>
        );
      if (b.type === 'tool_result')
        return (
          <details key={i} class="tool">
            <summary>Tool result{b.is_error ? ' (error)' : ''}</summary>
            <pre>{typeof b.content === 'string' ? b.content : JSON.stringify(b.content, null, 2)}</pre>
          </details>
        );
      return null;
    })
    .filter(Boolean);
  if (parts.length === 0) return null;
  return <div class={`bubble ${m.type}`}>{parts}</div>;
}

function Conversation({
  session,
  onError,
  onChanged,
  onFilesChanged,
  onOpen,
}: {
  session: Session;
  onError: (e: ApiError) => void;
  onChanged: () => void;
  onFilesChanged: () => void;
  /** Opens another session (a fork made here). */
  onOpen: (sessionId: string) => void;
}) {
  const [messages, setMessages] = useState<Message[]>([]);
  const [changes, setChanges] = useState<Array<{ turn_id: string; files: Parameters<typeof ChangesCard>[0]['files'] }>>([]);
  const [live, setLive] = useState('');
  const [running, setRunning] = useState<string | null>(session.running_turn_id);
  const [queue, setQueue] = useState<Turn[]>([]);
  const [approvals, setApprovals] = useState<Approval[]>([]);
  const [prompt, setPrompt] = useState('');
  const [attachments, setAttachments] = useState<Attachment[]>([]);
  const [ifBusy, setIfBusy] = useState<'queue' | 'interrupt'>('queue');
  const [conn, setConn] = useState<'live' | 'reconnecting'>('live');
  const endRef = useRef<HTMLDivElement>(null);
  const id = session.session_id;

  const load = async () => {
    try {
      const page = await api<{ messages: Message[] }>('GET', `/v1/sessions/${id}/messages?limit=500`);
      setMessages(page.messages);
      setQueue((await api<{ turns: Turn[] }>('GET', `/v1/sessions/${id}/turns?status=queued`)).turns);
      setApprovals((await api<{ requests: Approval[] }>('GET', `/v1/sessions/${id}/permissions`)).requests);
    } catch (e) {
      onError(e as ApiError);
    }
  };

  useEffect(() => {
    setMessages([]);
    setLive('');
    void load();
    // Live text of the running turn; the transcript is reloaded when a turn ends.
    let text = '';
    const stop = follow(
      `/v1/sessions/${id}/events`,
      (e) => {
        if (e.event === 'turn') {
          const t = e.data as Turn;
          if (t.status === 'running') setRunning(t.turn_id);
          if (t.status === 'queued') setQueue((q) => (q.some((x) => x.turn_id === t.turn_id) ? q : [...q, t]));
          else setQueue((q) => q.filter((x) => x.turn_id !== t.turn_id));
        } else if (e.event === 'message' && (e.data as { type?: string } | null)?.type === 'stream_event') {
          const ev = (e.data as StreamPartial).event;
          if (ev?.type === 'message_start' && text) text += '\n\n';
          if (ev?.type === 'content_block_delta' && ev.delta?.type === 'text_delta') {
            text += ev.delta.text;
            setLive(text);
          }
        } else if (e.event === 'permission_request') {
          const r = e.data as Approval;
          setApprovals((a) => (a.some((x) => x.request_id === r.request_id) ? a : [...a, r]));
        } else if (e.event === 'permission_resolved') {
          const r = e.data as { request_id: string };
          setApprovals((a) => a.filter((x) => x.request_id !== r.request_id));
        } else if (e.event === 'files_changed') {
          const c = e.data as { turn_id: string; files: Parameters<typeof ChangesCard>[0]['files'] };
          setChanges((x) => [...x.filter((y) => y.turn_id !== c.turn_id), c]);
          onFilesChanged();
        } else if (e.event === 'done') {
          text = '';
          setLive('');
          setRunning(null);
          void load();
          onChanged();
        }
      },
      setConn,
    );
    return stop;
  }, [id]);

  useEffect(() => endRef.current?.scrollIntoView({ block: 'end' }), [messages, live]);

  const send = async () => {
    const text = prompt.trim();
    if (!text && attachments.length === 0) return;
    const sent = attachments;
    const body =
      sent.length === 0
        ? text
        : [
            ...(text ? [{ type: 'text', text }] : []),
            ...sent.map((a) => ({ type: a.type, source: { type: 'base64', media_type: a.media_type, data: a.data } })),
          ];
    setPrompt('');
    setAttachments([]);
    try {
      await api('POST', `/v1/sessions/${id}/turns?wait=false`, { prompt: body, if_busy: ifBusy });
      for (const a of sent) if (a.url) URL.revokeObjectURL(a.url);
      onChanged();
    } catch (e) {
      setPrompt(text);
      setAttachments(sent);
      onError(e as ApiError);
    }
  };
  const attach = async (files: FileList | File[]) => {
    const { ok, refused } = await readAttachments(files);
    if (ok.length > 0) setAttachments((a) => [...a, ...ok]);
    if (refused.length > 0) {
      onError(new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `Only images (PNG, JPEG, GIF, WebP) and PDFs can be attached: ${refused.join(', ')}`));
    }
  };
  const drop = useDrop((files) => void attach(files));
  const decide = async (a: Approval, behavior: 'allow' | 'deny', scope?: 'once' | 'session') => {
    try {
      await api('POST', `/v1/sessions/${id}/permissions/${a.request_id}`, { behavior, ...(scope ? { scope } : {}) });
      setApprovals((x) => x.filter((y) => y.request_id !== a.request_id));
    } catch (e) {
      onError(e as ApiError);
    }
  };

  return (
    <section class="conversation" aria-label="Conversation">
      <div class="messages">
        {messages.map((m) => (
          <Bubble key={m.uuid} m={m} />
        ))}
        {live ? (
          <div class="bubble assistant live" aria-live="polite">
            <Markdown text={live} />
          </div>
        ) : null}
        {changes.map((c) => (
          <ChangesCard
            key={c.turn_id}
            sessionId={id}
            turnId={c.turn_id}
            files={c.files}
            onError={onError}
            onRewound={(fork) => {
              onFilesChanged();
              if (fork) onOpen(fork);
            }}
          />
        ))}
        <div ref={endRef} />
      </div>
      {queue.length > 0 ? (
        <div class="queue" aria-label="Queued turns">
          <strong>Queued</strong>
          {queue.map((t) => (
            <div key={t.turn_id} class="queued">
              <span>{t.prompt.slice(0, 80)}</span>
              <button class="link" onClick={() => void api('DELETE', `/v1/sessions/${id}/turns/${t.turn_id}`).then(load, onError)}>
                Cancel
              </button>
            </div>
          ))}
        </div>
      ) : null}
      <form
        class={`composer${drop.dragging ? ' dragging' : ''}`}
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
        {...drop.handlers}
      >
        {attachments.length > 0 ? (
          <ul class="attachments" aria-label="Attachments">
            {attachments.map((a, i) => (
              <li key={i}>
                {a.url ? <img src={a.url} alt="" /> : <span aria-hidden="true">📄</span>}
                <span>{a.name}</span>
                <button type="button" class="link" aria-label={`Remove ${a.name}`} onClick={() => setAttachments((x) => x.filter((_, j) => j !== i))}>
                  ×
                </button>
              </li>
            ))}
          </ul>
        ) : null}
        <textarea
          onPaste={(e) => {
            const files = Array.from(e.clipboardData?.files ?? []);
            if (files.length > 0) {
              e.preventDefault();
              void attach(files);
            }
          }}
          aria-label="Prompt"
          placeholder="Ask Claude… (Enter to send, Shift+Enter for a new line; paste or drop an image or PDF to attach it)"
          value={prompt}
          onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <div class="row">
          <label>
            When busy{' '}
            <select value={ifBusy} onChange={(e) => setIfBusy((e.target as HTMLSelectElement).value as 'queue' | 'interrupt')}>
              <option value="queue">queue</option>
              <option value="interrupt">interrupt</option>
            </select>
          </label>
          <span class={`conn ${conn}`}>{running ? 'running…' : conn === 'live' ? 'idle' : 'reconnecting…'}</span>
          <button type="button" disabled={!running} onClick={() => void api('POST', `/v1/sessions/${id}/interrupt`, {}).catch(onError)}>
            Interrupt
          </button>
          <button type="submit">Send</button>
        </div>
      </form>
      {approvals.length > 0 ? (
        <div class="modal" role="dialog" aria-modal="true" aria-label="Tool approval">
          <div class="card">
            <h2>Claude wants to use {approvals[0].tool_name}</h2>
            <pre>{JSON.stringify(approvals[0].input, null, 2)}</pre>
            <div class="row">
              <button onClick={() => void decide(approvals[0], 'allow', 'once')}>Allow once</button>
              <button onClick={() => void decide(approvals[0], 'allow', 'session')}>Allow for session</button>
              <button class="danger" onClick={() => void decide(approvals[0], 'deny')}>
                Deny
              </button>
            </div>
          </div>
        </div>
      ) : null}
    </section>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(true);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [q, setQ] = useState('');
  const [status, setStatus] = useState('');
  const [project, setProject] = useState('');
  const [error, setError] = useState<ApiError | null>(null);
  const [creating, setCreating] = useState(false);
  const [form, setForm] = useState({ session_name: '', project: '', permission_mode: '', agent_id: '' });
  const [agents, setAgents] = useState<Agent[]>([]);
  const [showFiles, setShowFiles] = useState(false);
  const [filesRefresh, setFilesRefresh] = useState(0);

  const [refused, setRefused] = useState(false);
  const onError = (e: ApiError) => {
    if (e.code === 'UNAUTHORIZED') {
      // A key that was refused is forgotten; the sign-in form says so.
      if (getKey()) setRefused(true);
      setKey('');
      setSignedIn(false);
    }
    setError(e);
  };
  const refresh = async () => {
    const params = new URLSearchParams({ limit: '100' });
    if (q) params.set('q', q);
    if (status) params.set('status', status);
    if (project) params.set('project', project);
    try {
      const r = await api<{ sessions: Session[] }>('GET', `/v1/sessions?${params}`);
      setSessions(r.sessions);
      setSignedIn(true);
    } catch (e) {
      onError(e as ApiError);
    }
  };
  useEffect(() => {
    void refresh();
  }, [q, status, project, signedIn]);
  useEffect(() => {
    if (signedIn) api<{ agents: Agent[] }>('GET', '/v1/agents?limit=200').then((r) => setAgents(r.agents), onError);
  }, [signedIn, creating]);

  const current = useMemo(() => sessions.find((s) => s.session_id === selected) ?? null, [sessions, selected]);
  // An archived agent is not in the list: its name is read once a session made from it is open.
  const [agentNames, setAgentNames] = useState<Record<string, string>>({});
  const currentAgent = current?.agent?.agent_id;
  useEffect(() => {
    if (!currentAgent || agents.some((a) => a.agent_id === currentAgent) || agentNames[currentAgent]) return;
    api<Agent>('GET', `/v1/agents/${currentAgent}`).then(
      (a) => setAgentNames((m) => ({ ...m, [currentAgent]: a.name })),
      () => {},
    );
  }, [currentAgent, agents]);

  if (!signedIn) {
    return (
      <SignIn
        failed={refused}
        onDone={() => {
          setError(null);
          setRefused(false);
          setSignedIn(true);
        }}
      />
    );
  }

  const create = async (e: Event) => {
    e.preventDefault();
    try {
      // The mode only when the person chose one: an agent's own mode stands otherwise.
      const body: Record<string, string> = form.permission_mode ? { permission_mode: form.permission_mode } : {};
      if (form.agent_id) body.agent_id = form.agent_id;
      if (form.session_name.trim()) body.session_name = form.session_name.trim();
      if (form.project.trim()) body.project = form.project.trim();
      const s = await api<Session>('POST', '/v1/sessions', body);
      setCreating(false);
      setForm({ session_name: '', project: '', permission_mode: '', agent_id: '' });
      await refresh();
      setSelected(s.session_id);
    } catch (err) {
      onError(err as ApiError);
    }
  };
  const act = (fn: () => Promise<unknown>) => fn().then(refresh, onError);

  return (
    <div class="app">
      <aside class="sidebar" aria-label="Sessions">
        <div class="row">
          <button onClick={() => setCreating((c) => !c)}>New session</button>
          <button onClick={() => void act(() => api('POST', '/v1/sessions/import', {}))}>Import</button>
        </div>
        {creating ? (
          <form class="create" onSubmit={(e) => void create(e)}>
            <input
              aria-label="Session name"
              placeholder="Name"
              value={form.session_name}
              onInput={(e) => setForm({ ...form, session_name: (e.target as HTMLInputElement).value })}
            />
            <input
              aria-label="Project folder"
              placeholder="Project folder (optional)"
              value={form.project}
              onInput={(e) => setForm({ ...form, project: (e.target as HTMLInputElement).value })}
            />
            <select aria-label="Agent" value={form.agent_id} onChange={(e) => setForm({ ...form, agent_id: (e.target as HTMLSelectElement).value })}>
              <option value="">No agent</option>
              {agents.map((a) => (
                <option key={a.agent_id} value={a.agent_id}>
                  {a.name} (v{a.version})
                </option>
              ))}
            </select>
            <select
              aria-label="Permission mode"
              value={form.permission_mode}
              onChange={(e) => setForm({ ...form, permission_mode: (e.target as HTMLSelectElement).value })}
            >
              <option value="">{form.agent_id ? "The agent's mode" : 'default'}</option>
              {['default', 'plan', 'dontAsk', 'acceptEdits', 'bypassPermissions']
                .filter((m) => form.agent_id || m !== 'default')
                .map((m) => (
                  <option key={m} value={m}>
                    {m}
                  </option>
                ))}
            </select>
            <button type="submit">Create</button>
          </form>
        ) : null}
        <input type="search" aria-label="Search sessions" placeholder="Search" value={q} onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
        <div class="row">
          <select aria-label="Filter by status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
            <option value="">active + archived</option>
            <option value="active">active</option>
            <option value="archived">archived</option>
          </select>
          <input aria-label="Filter by project" placeholder="Project" value={project} onInput={(e) => setProject((e.target as HTMLInputElement).value)} />
        </div>
        <ul class="list">
          {sessions.map((s) => (
            <li key={s.session_id}>
              <button class={`item ${s.session_id === selected ? 'selected' : ''}`} onClick={() => setSelected(s.session_id)}>
                <span class="name">{title(s)}</span>
                <span class="meta">
                  {s.project} · {s.turn_count} turns · {s.status}
                  {s.running_turn_id ? ' · running' : ''}
                </span>
              </button>
            </li>
          ))}
          {sessions.length === 0 ? <li class="muted">No sessions yet.</li> : null}
        </ul>
      </aside>
      <main>
        <ErrorBanner error={error} onClose={() => setError(null)} />
        {current ? (
          <>
            <header class="row">
              <h1>{title(current)}</h1>
              <button aria-pressed={showFiles} onClick={() => setShowFiles((v) => !v)}>
                Files
              </button>
              {current.agent ? (
                <span class="badge" title={`agent ${current.agent.agent_id}`}>
                  {agents.find((a) => a.agent_id === current.agent!.agent_id)?.name ?? agentNames[current.agent.agent_id] ?? 'agent'} · v{current.agent.version}
                </span>
              ) : null}
              <button
                onClick={() => {
                  const name = prompt('New name', current.session_name ?? '');
                  if (name) void act(() => api('PATCH', `/v1/sessions/${current.session_id}`, { session_name: name }));
                }}
              >
                Rename
              </button>
              <button
                onClick={() =>
                  void act(() => api('PATCH', `/v1/sessions/${current.session_id}`, { status: current.status === 'archived' ? 'active' : 'archived' }))
                }
              >
                {current.status === 'archived' ? 'Unarchive' : 'Archive'}
              </button>
              <button
                class="danger"
                onClick={() => {
                  if (confirm('Delete this session?')) void act(() => api('DELETE', `/v1/sessions/${current.session_id}`)).then(() => setSelected(null));
                }}
              >
                Delete
              </button>
            </header>
            <div class={showFiles ? 'with-files' : 'conv-wrap'}>
              <Conversation
                key={current.session_id}
                session={current}
                onError={onError}
                onChanged={() => void refresh()}
                onFilesChanged={() => setFilesRefresh((n) => n + 1)}
                onOpen={(sid) => void refresh().then(() => setSelected(sid))}
              />
              {showFiles ? <FilesPanel sessionId={current.session_id} onError={onError} refresh={filesRefresh} /> : null}
            </div>
          </>
        ) : (
          <p class="muted empty">Choose a session, or make a new one.</p>
        )}
      </main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
