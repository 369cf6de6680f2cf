/** The sign-in form, and the open session's title bar (rename in place, fork, archive, delete with an inline confirmation). */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ApiError, setKey } from './api';
import { count, money } from './transcript';
import { sessionTitle, type Session } from './types';

export function SignIn({ onDone, failed }: { onDone: () => void; failed: boolean }) {
  const [key, setK] = useState('');
  const [tabOnly, setTabOnly] = useState(false);
  return (
    <main class="signin-page">
      <form
        class="signin"
        onSubmit={(e) => {
          e.preventDefault();
          setKey(key.trim(), tabOnly);
          onDone();
        }}
      >
        <h1>Claude sessions</h1>
        <label>
          API key
          <input type="password" value={key} onInput={(e) => setK((e.target as HTMLInputElement).value)} autoFocus autoComplete="current-password" />
        </label>
        <label class="check">
          <input type="checkbox" checked={tabOnly} onChange={(e) => setTabOnly((e.target as HTMLInputElement).checked)} />
          Keep the key for this tab only
        </label>
        <button type="submit" class="primary">
          Sign in
        </button>
        {failed ? (
          <p class="error" role="alert">
            That key was not accepted.
          </p>
        ) : null}
        <p class="meta">{tabOnly ? 'The key is forgotten when this tab closes.' : 'Other tabs of this browser use the key too, until you sign out.'}</p>
      </form>
    </main>
  );
}

/** The open session's title bar: rename in place, fork, archive, delete with an inline confirmation. */
export function SessionHeader({
  session,
  agentName,
  showFiles,
  onFiles,
  onChanged,
  onDeleted,
  onOpen,
  onError,
}: {
  session: Session;
  agentName: string | null;
  showFiles: boolean;
  onFiles: () => void;
  onChanged: () => void;
  onDeleted: () => void;
  onOpen: (id: string) => void;
  onError: (e: ApiError) => void;
}) {
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState('');
  const [confirming, setConfirming] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);
  const id = session.session_id;
  useEffect(() => {
    setRenaming(false);
    setConfirming(false);
  }, [id]);
  const act = (fn: () => Promise<unknown>) => fn().then(onChanged, onError);
  const save = async () => {
    const n = name.trim();
    setRenaming(false);
    if (n && n !== session.session_name) await act(() => api('PATCH', `/v1/sessions/${id}`, { session_name: n }));
    heading.current?.focus();
  };
  return (
    <div class="session-header">
      {renaming ? (
        <form
          class="rename"
          onSubmit={(e) => {
            e.preventDefault();
            void save();
          }}
        >
          <input
            aria-label="Session name"
            value={name}
            maxLength={200}
            autoFocus
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') {
                setRenaming(false);
                heading.current?.focus();
              }
            }}
          />
          <button type="submit" class="primary">
            Save
          </button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <h1 ref={heading} tabIndex={-1}>
          {sessionTitle(session)}
        </h1>
      )}
      <div class="session-facts">
        {agentName ? (
          <span class="badge" title={`agent ${session.agent!.agent_id}`}>
            {agentName} · v{session.agent!.version}
          </span>
        ) : null}
        <span class="meta" aria-label="Session totals">
          {money(session.total_cost_usd)} · {count(session.usage.input_tokens + session.usage.output_tokens)} tokens · {session.turn_count}{' '}
          {session.turn_count === 1 ? 'turn' : 'turns'}
        </span>
        {session.status === 'archived' ? <span class="badge">archived</span> : null}
      </div>
      <div class="row actions">
        <button type="button" aria-pressed={showFiles} onClick={onFiles}>
          Files
        </button>
        <button
          type="button"
          onClick={() => {
            setName(session.session_name ?? '');
            setRenaming(true);
          }}
        >
          Rename
        </button>
        <button
          type="button"
          onClick={() =>
            void api<Session>('POST', `/v1/sessions/${id}/fork`, { session_name: `${sessionTitle(session).slice(0, 190)} (fork)` }).then((f) => {
              onChanged();
              onOpen(f.session_id);
            }, onError)
          }
        >
          Fork
        </button>
        <button
          type="button"
          onClick={() => void act(() => api('PATCH', `/v1/sessions/${id}`, { status: session.status === 'archived' ? 'active' : 'archived' }))}
        >
          {session.status === 'archived' ? 'Unarchive' : 'Archive'}
        </button>
        {confirming ? (
          <span class="confirm" role="group" aria-label="Delete this session?">
            Delete this session?
            <button type="button" class="danger" autoFocus onClick={() => void api('DELETE', `/v1/sessions/${id}`).then(onDeleted, onError)}>
              Delete
            </button>
            <button type="button" onClick={() => setConfirming(false)}>
              Keep
            </button>
          </span>
        ) : (
          <button type="button" class="danger" onClick={() => setConfirming(true)}>
            Delete…
          </button>
        )}
      </div>
    </div>
  );
}
