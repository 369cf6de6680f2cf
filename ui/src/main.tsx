/**
 * The web page: sign in with a key (or none on a single-user server), list and manage sessions,
 * read a conversation (its own URL, #/s/<id>), send prompts, follow the running turn live, answer
 * tool approvals. The list is a drawer on narrow screens; header and composer stay in view.
 */
import { render } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, forgetKey, getKey, onReachability, setKey } from './api';
import { Conversation } from './conversation';
import { SessionHeader, SignIn } from './header';
import { FilesPanel } from './files';
import { DEFAULT_FILTERS, Sidebar, type Filters } from './sidebar';
import { sessionTitle, type Agent, type Me, type Session } from './types';
import './style.css';

const LIST_PAGE = 50;
const routeId = () => /^#\/s\/([0-9a-f-]{36})$/i.exec(location.hash)?.[1] ?? null;

function ErrorBanner({ error, onClose }: { error: ApiError | null; onClose: () => void }) {
  if (!error) return null;
  const hint: Record<string, string> = {
    SESSION_BUSY: 'The session is running a turn: your message can wait in the queue.',
    RATE_LIMITED: 'Too many requests: wait a moment.',
    CAPACITY_EXCEEDED: 'The server is at capacity: try again shortly.',
    OFFLINE: 'Check that the server is running.',
    UNAUTHORIZED: 'Sign in with a valid API key.',
  };
  return (
    <div class="error" role="alert">
      <strong>{error.code}</strong> {error.message} {hint[error.code] ? <em>{hint[error.code]}</em> : null}
      <button type="button" class="link" onClick={onClose} aria-label="Dismiss error">
        ×
      </button>
    </div>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(true);
  const [refused, setRefused] = useState(false);
  const [me, setMe] = useState<Me | null>(null);
  const [sessions, setSessions] = useState<Session[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [filters, setFilters] = useState<Filters>(DEFAULT_FILTERS);
  const [selected, setSelected] = useState<string | null>(routeId());
  const [current, setCurrent] = useState<Session | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const [online, setOnline] = useState(true);
  const [drawer, setDrawer] = useState(false);
  const [showFiles, setShowFiles] = useState(false);
  const [filesRefresh, setFilesRefresh] = useState(0);
  const [agentNames, setAgentNames] = useState<Record<string, string>>({});
  const [said, setSaid] = useState('');
  const focusPrompt = useRef(false);

  // The newest filters and selection, for answers that arrive after they changed.
  const filtersRef = useRef(filters);
  filtersRef.current = filters;
  const selectedRef = useRef(selected);
  selectedRef.current = selected;
  const menu = useRef<HTMLButtonElement>(null);
  const sidebar = useRef<HTMLElement>(null);

  const onError = (e: ApiError) => {
    if (e.code === 'UNAUTHORIZED') {
      // A key that was refused is forgotten (where it was kept); the sign-in form says so.
      if (getKey()) setRefused(true);
      forgetKey(e.key);
      setSignedIn(false);
    }
    if (e.code !== 'OFFLINE') setError(e);
  };
  const announce = (text: string) => setSaid(text);

  const listUrl = (after?: string) => {
    const filters = filtersRef.current;
    const p = new URLSearchParams({ limit: String(LIST_PAGE) });
    if (filters.q) p.set('q', filters.q);
    if (filters.status) p.set('status', filters.status);
    if (filters.project) p.set('project', filters.project);
    if (after) p.set('cursor', after);
    return `/v1/sessions?${p}`;
  };
  const refresh = async () => {
    const asked = filtersRef.current;
    try {
      const r = await api<{ sessions: Session[]; next_cursor: string | null }>('GET', listUrl());
      if (asked !== filtersRef.current) return;
      setSessions(r.sessions);
      setCursor(r.next_cursor);
      setSignedIn(true);
    } catch (e) {
      onError(e as ApiError);
    }
  };
  const more = async () => {
    if (!cursor) return;
    const asked = filtersRef.current;
    try {
      const r = await api<{ sessions: Session[]; next_cursor: string | null }>('GET', listUrl(cursor));
      if (asked !== filtersRef.current) return;
      setSessions((s) => [...s, ...r.sessions.filter((x) => !s.some((y) => y.session_id === x.session_id))]);
      setCursor(r.next_cursor);
    } catch (e) {
      onError(e as ApiError);
    }
  };
  const loadCurrent = async (id: string | null) => {
    if (!id) return setCurrent(null);
    try {
      const s = await api<Session>('GET', `/v1/sessions/${id}`);
      // An answer for a session no longer selected (the person moved on) is dropped.
      if (selectedRef.current === id) setCurrent(s);
    } catch (e) {
      const err = e as ApiError;
      if (selectedRef.current !== id) return;
      if (err.code === 'SESSION_NOT_FOUND') {
        setCurrent(null);
        history.replaceState(null, '', location.pathname);
        setSelected(null);
      }
      onError(err);
    }
  };
  const changed = () => {
    void refresh();
    void loadCurrent(selectedRef.current);
  };

  useEffect(() => onReachability(setOnline), []);
  useEffect(() => {
    const onHash = () => setSelected(routeId());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    const timer = setTimeout(() => void refresh(), filters.q || filters.project ? 200 : 0);
    return () => clearTimeout(timer);
  }, [filters, signedIn]);
  useEffect(() => {
    if (signedIn) api<Me>('GET', '/v1/me').then(setMe, onError);
  }, [signedIn]);
  useEffect(() => {
    void loadCurrent(selected);
    setDrawer(false);
  }, [selected, signedIn]);
  // An archived agent is not in the list: its name is read once a session made from it is open.
  const currentAgent = current?.agent?.agent_id;
  useEffect(() => {
    if (!currentAgent || agentNames[currentAgent]) return;
    api<Agent>('GET', `/v1/agents/${currentAgent}`).then(
      (a) => setAgentNames((m) => ({ ...m, [currentAgent]: a.name })),
      () => {},
    );
  }, [currentAgent]);
  useEffect(() => {
    document.title = current ? `${sessionTitle(current)} · Claude sessions` : 'Claude sessions';
    if (current && focusPrompt.current) {
      focusPrompt.current = false;
      setTimeout(() => document.querySelector<HTMLTextAreaElement>('textarea[aria-label="Prompt"]')?.focus(), 0);
    }
  }, [current?.session_id, current?.session_name]);

  /** Where the focus goes in the commit that closes the drawer. */
  const focusAfterClose = useRef<'menu' | 'prompt' | null>(null);
  /** Opens a session (its address changes); the prompt gets the focus, ready to type. */
  const open = (id: string) => {
    if (id === selectedRef.current) {
      // Once the drawer is closed (the prompt is inside what the open drawer made inert).
      if (drawer) {
        focusAfterClose.current = 'prompt';
        setDrawer(false);
      } else document.querySelector<HTMLTextAreaElement>('textarea[aria-label="Prompt"]')?.focus();
      return;
    }
    focusPrompt.current = true;
    location.hash = `#/s/${id}`;
  };
  // The drawer (narrow screens): focus goes into it when it opens, Escape closes it and gives the focus back.
  useEffect(() => {
    if (!drawer) return;
    sidebar.current?.querySelector<HTMLElement>('button, a, input, select')?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== 'Escape') return;
      focusAfterClose.current = 'menu';
      setDrawer(false);
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [drawer]);
  // In the same commit that closes the drawer (the menu button was inside what the open drawer made
  // inert): the focus is never left on a hidden element, not even for a frame.
  useLayoutEffect(() => {
    const to = focusAfterClose.current;
    if (drawer || !to) return;
    focusAfterClose.current = null;
    if (to === 'menu') menu.current?.focus();
    else document.querySelector<HTMLTextAreaElement>('textarea[aria-label="Prompt"]')?.focus();
  }, [drawer]);

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

  return (
    <div class={`app${drawer ? ' drawer-open' : ''}`}>
      <a class="skip" href="#prompt-box" onClick={(e) => (e.preventDefault(), document.querySelector<HTMLElement>('textarea[aria-label="Prompt"]')?.focus())}>
        Skip to the prompt
      </a>
      <aside class="sidebar" id="sessions" aria-label="Sessions" ref={sidebar}>
        <div class="sidebar-top row">
          <strong class="brand">Claude sessions</strong>
          {me && getKey() ? (
            <button
              type="button"
              class="link"
              onClick={() => {
                setKey('');
                setSignedIn(false);
              }}
            >
              Sign out {me.user_id}
            </button>
          ) : null}
        </div>
        <Sidebar
          me={me}
          sessions={sessions}
          more={cursor !== null}
          filters={filters}
          selected={selected}
          onFilters={setFilters}
          onMore={() => void more()}
          onOpen={open}
          onCreated={(s) => {
            void refresh();
            open(s.session_id);
          }}
          onImported={() => void refresh()}
          onError={onError}
        />
      </aside>
      <div class="scrim" onClick={() => setDrawer(false)} aria-hidden="true" />
      <main inert={drawer}>
        <header class="topbar">
          <button ref={menu} type="button" class="menu" aria-controls="sessions" aria-expanded={drawer} onClick={() => setDrawer((d) => !d)}>
            Sessions
          </button>
          {current ? (
            <SessionHeader
              session={current}
              agentName={current.agent ? (agentNames[current.agent.agent_id] ?? null) : null}
              showFiles={showFiles}
              onFiles={() => setShowFiles((v) => !v)}
              onChanged={changed}
              onDeleted={() => {
                history.replaceState(null, '', location.pathname);
                setSelected(null);
                void refresh();
                announce('Session deleted');
              }}
              onOpen={open}
              onError={onError}
            />
          ) : (
            <h1 class="placeholder-title">Claude sessions</h1>
          )}
        </header>
        {!online ? (
          <p class="offline" role="status">
            Offline: the server cannot be reached. Trying again…
          </p>
        ) : null}
        <ErrorBanner error={error} onClose={() => setError(null)} />
        {current ? (
          <div class={showFiles ? 'with-files' : 'conv-wrap'}>
            <Conversation
              key={current.session_id}
              session={current}
              userId={me?.user_id ?? null}
              onError={onError}
              onChanged={changed}
              onFilesChanged={() => setFilesRefresh((n) => n + 1)}
              onOpen={(sid) => {
                void refresh();
                open(sid);
              }}
              announce={announce}
            />
            {showFiles ? <FilesPanel sessionId={current.session_id} onError={onError} refresh={filesRefresh} /> : null}
          </div>
        ) : (
          <div class="empty">
            {sessions.length === 0 ? (
              <p>Make a session with “New session”: each one is a Claude Code conversation in a folder of your workspace, kept across restarts.</p>
            ) : (
              <p>Choose a session from the list, or make a new one.</p>
            )}
          </div>
        )}
      </main>
      <div class="sr-only" aria-live="polite" role="status">
        {said}
      </div>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
