/**
 * One session's conversation: the newest page of its transcript first (older pages as the person
 * scrolls up), then what happens live from the running turn on (the event stream's tail, not its
 * whole log): the prompt at once, a thinking state, the streamed answer, tool cards, retries of a
 * failing model, approvals in place, and each turn's time, tokens and cost.
 * Over 400 lines: the stream's handler, the reads it triggers and the list they build share one
 * state (what is loaded, the live turn, approvals, decisions); what is pure is in transcript.ts,
 * what draws in items.tsx and composer.tsx.
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, ApiError, follow } from './api';
import { ChangesCard } from './files';
import { Composer, type Attachment } from './composer';
import { ApprovalCard, AssistantBubble, ErrorCard, StatusLine, ToolCard, TurnFooter, UserBubble } from './items';
import { pairTurns, toItems, type Decisions, type Item, type Message } from './transcript';
import type { Approval, Session, Turn } from './types';

const PAGE = 50;

interface Retry {
  attempt: number;
  max_retries: number;
  retry_delay_ms: number;
  error_status: number | null;
  error?: string;
}
/** The running turn as its events tell it. */
interface Live {
  turn: Turn;
  messages: Message[];
  /** Text of the message being streamed. */
  text: string;
  retry: Retry | null;
  notices: string[];
}
interface StreamPartial {
  type: 'stream_event';
  event?: { type?: string; delta?: { type?: string; text?: string } };
}
type Changes = { turn_id: string; files: Parameters<typeof ChangesCard>[0]['files'] };

/** Pages the page reads back at most to join the newest page onto what is loaded (a turn of many tool calls). */
const CATCH_UP_PAGES = 10;
/** Streamed text reaches the screen at most this often (each update renders the answer's markdown again). */
const TEXT_FRAME_MS = 50;

export function Conversation({
  session,
  userId,
  onError,
  onChanged,
  onFilesChanged,
  onOpen,
  announce,
}: {
  session: Session;
  /** The signed-in user (approvals decided by someone else are named). */
  userId: string | null;
  onError: (e: ApiError) => void;
  onChanged: () => void;
  onFilesChanged: () => void;
  /** Opens another session (a fork made here). */
  onOpen: (sessionId: string) => void;
  /** Says something to screen readers (status changes). */
  announce: (text: string) => void;
}) {
  const id = session.session_id;
  const [loaded, setLoaded] = useState<Message[]>([]);
  const [ready, setReady] = useState(false);
  const [older, setOlder] = useState<'more' | 'loading' | 'none'>('none');
  const [turns, setTurns] = useState<Turn[]>([]);
  const [decisions, setDecisions] = useState<Decisions>(new Map());
  const [live, setLive] = useState<Live | null>(null);
  const [sending, setSending] = useState<{ text: string; images: string[]; documents: number } | null>(null);
  const [queue, setQueue] = useState<Turn[]>([]);
  const [approvals, setApprovals] = useState<Approval[]>([]);
  const [changes, setChanges] = useState<Changes[]>([]);
  const [justFailed, setJustFailed] = useState<string | null>(null);
  const [conn, setConn] = useState<'live' | 'reconnecting'>('live');
  const scroller = useRef<HTMLDivElement>(null);
  const top = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  /** Whether the view follows the newest message (the person has not scrolled up). */
  const pinned = useRef(true);
  /** Scroll height before older messages were put above, to keep the view where it was. */
  const anchor = useRef<number | null>(null);
  const loadedRef = useRef<Message[]>([]);
  loadedRef.current = loaded;
  /** Requests the stream said were decided. */
  const resolved = useRef(new Set<string>());
  // Callbacks of the parent as they are now (the event stream's handler lives as long as the session is open).
  const parent = useRef({ onChanged, onFilesChanged, announce });
  parent.current = { onChanged, onFilesChanged, announce };

  const loadNewest = async () => {
    const read = (offset: number) =>
      api<{ messages: Message[]; next_offset: number | null }>('GET', `/v1/sessions/${id}/messages?order=desc&limit=${PAGE}&offset=${offset}`);
    const first = await read(0);
    let newest = first.messages.slice().reverse();
    let more = first.next_offset !== null;
    const have = loadedRef.current;
    // Read back until the newest pages meet what is loaded, so what the person paged in stays.
    if (have.length > 0) {
      const known = new Set(have.map((m) => m.uuid));
      for (let n = 1; n < CATCH_UP_PAGES && more && !newest.some((m) => known.has(m.uuid)); n++) {
        const page = await read(n * PAGE);
        newest = [...page.messages.slice().reverse(), ...newest];
        more = page.next_offset !== null;
      }
    }
    setLoaded((l) => {
      if (l.length > 0) {
        const at = newest.findIndex((m) => l.some((x) => x.uuid === m.uuid));
        if (at >= 0) {
          const from = l.findIndex((x) => x.uuid === newest[at].uuid);
          return [...l.slice(0, from), ...newest.slice(at)];
        }
      }
      setOlder(more ? 'more' : 'none');
      return newest;
    });
  };
  const loadSide = async () => {
    const [t, q, a, all] = await Promise.all([
      api<{ turns: Turn[] }>('GET', `/v1/sessions/${id}/turns?order=desc&limit=200`),
      api<{ turns: Turn[] }>('GET', `/v1/sessions/${id}/turns?status=queued`),
      api<{ requests: Approval[] }>('GET', `/v1/sessions/${id}/permissions`),
      api<{ requests: Approval[] }>('GET', `/v1/sessions/${id}/permissions?status=all&limit=500`),
    ]);
    setTurns(t.turns.slice().reverse());
    setQueue(q.turns);
    // (A request decided on the stream while this was read is not brought back.)
    setApprovals(a.requests.filter((r) => !resolved.current.has(r.request_id)));
    setDecisions(
      new Map(
        all.requests.filter((r) => r.tool_use_id && r.status !== 'pending').map((r) => [r.tool_use_id!, { status: r.status!, by: r.decided_by ?? null }]),
      ),
    );
  };
  const readBoth = async () => {
    try {
      await Promise.all([loadNewest(), loadSide()]);
    } catch (e) {
      onError(e as ApiError);
    } finally {
      setReady(true);
    }
  };
  /**
   * Reads the conversation again: one read at a time, and at most one more waiting for it (many `done`s
   * replayed after a gap make one more read, and an older read never lands after a newer one).
   */
  const reads = useRef<{ running: Promise<void> | null; next: Promise<void> | null }>({ running: null, next: null });
  const reload = (): Promise<void> => {
    const r = reads.current;
    if (!r.running) {
      r.running = readBoth().finally(() => (r.running = null));
      return r.running;
    }
    r.next ??= r.running.then(() => {
      r.next = null;
      return reload();
    });
    return r.next;
  };
  const loadOlder = async () => {
    if (older !== 'more') return;
    setOlder('loading');
    try {
      const have = loadedRef.current;
      const page = await api<{ messages: Message[]; next_offset: number | null }>(
        'GET',
        `/v1/sessions/${id}/messages?order=desc&limit=${PAGE}&offset=${have.length}`,
      );
      const seen = new Set(have.map((m) => m.uuid));
      const fresh = page.messages.filter((m) => !seen.has(m.uuid)).reverse();
      if (fresh.length > 0) {
        anchor.current = scroller.current ? scroller.current.scrollHeight - scroller.current.scrollTop : null;
        setLoaded((l) => [...fresh.filter((m) => !l.some((x) => x.uuid === m.uuid)), ...l]);
      }
      setOlder(page.next_offset === null ? 'none' : 'more');
    } catch (e) {
      setOlder('more');
      onError(e as ApiError);
    }
  };

  useEffect(() => {
    setLoaded([]);
    setLive(null);
    setReady(false);
    setJustFailed(null);
    pinned.current = true;
    let current: Live | null = null;
    let frame: ReturnType<typeof setTimeout> | null = null;
    /** Sets the live state; streamed text waits for the next frame, everything else shows at once. */
    const update = (next: Live | null, soon = false) => {
      current = next;
      if (soon) {
        frame ??= setTimeout(() => {
          frame = null;
          setLive(current);
        }, TEXT_FRAME_MS);
        return;
      }
      if (frame) clearTimeout(frame);
      frame = null;
      setLive(next);
    };
    let loadedOnce = false;
    let wasDown = false;
    const stop = follow(
      `/v1/sessions/${id}/events?tail=true`,
      (e) => {
        const data = e.data as Record<string, unknown> | null;
        if (e.event === 'turn') {
          const t = data as unknown as Turn;
          if (t.status === 'running' && current?.turn.turn_id !== t.turn_id) {
            update({ turn: t, messages: [], text: '', retry: null, notices: [] });
            setSending(null);
            setJustFailed(null);
            parent.current.announce('Claude is working on your message');
          }
          if (t.status === 'queued') setQueue((q) => (q.some((x) => x.turn_id === t.turn_id) ? q : [...q, t]));
          else setQueue((q) => q.filter((x) => x.turn_id !== t.turn_id));
        } else if (e.event === 'message' && current) {
          const type = data?.type;
          if (type === 'stream_event') {
            const ev = (data as unknown as StreamPartial).event;
            if (ev?.type === 'message_start') update({ ...current, text: '', retry: null });
            else if (ev?.type === 'content_block_delta' && ev.delta?.type === 'text_delta')
              update({ ...current, text: current.text + (ev.delta.text ?? ''), retry: null }, true);
          } else if (type === 'assistant' || type === 'user') {
            update({ ...current, messages: [...current.messages, data as unknown as Message], text: type === 'assistant' ? '' : current.text, retry: null });
          } else if (type === 'system' && data?.subtype === 'api_retry') {
            const retry = data as unknown as Retry;
            update({ ...current, retry });
            parent.current.announce(`Model error ${retry.error_status ?? ''}: retry ${retry.attempt} of ${retry.max_retries}`);
          }
        } else if (e.event === 'error' && current) {
          update({ ...current, notices: [...current.notices, typeof data?.message === 'string' ? data.message : 'An error was reported'] });
        } else if (e.event === 'permission_request') {
          const r = data as unknown as Approval;
          setApprovals((a) => (a.some((x) => x.request_id === r.request_id) ? a : [...a, r]));
          parent.current.announce(`Approval needed: ${r.tool_name}`);
        } else if (e.event === 'permission_resolved') {
          const r = data as { request_id: string; status?: string; by?: string | null };
          resolved.current.add(r.request_id);
          setApprovals((a) => {
            const was = a.find((x) => x.request_id === r.request_id);
            if (was?.tool_use_id && r.status && r.status !== 'allowed')
              setDecisions((d) => new Map(d).set(was.tool_use_id!, { status: r.status!, by: r.by ?? null }));
            return a.filter((x) => x.request_id !== r.request_id);
          });
        } else if (e.event === 'files_changed') {
          const c = data as unknown as Changes;
          setChanges((x) => [...x.filter((y) => y.turn_id !== c.turn_id), c]);
          parent.current.onFilesChanged();
        } else if (e.event === 'done') {
          const t = data as unknown as Turn;
          setTurns((ts) => [...ts.filter((x) => x.turn_id !== t.turn_id), t]);
          setQueue((q) => q.filter((x) => x.turn_id !== t.turn_id));
          if (t.status === 'failed') setJustFailed(t.turn_id);
          parent.current.announce(
            t.status === 'succeeded' ? 'Claude answered' : t.status === 'failed' ? `The turn failed: ${t.error?.code ?? ''}` : `The turn ended: ${t.status}`,
          );
          // The live part stays until the transcript that replaces it has arrived.
          void reload().then(() => {
            if (current?.turn.turn_id === t.turn_id) update(null);
          });
          parent.current.onChanged();
        }
      },
      (state) => {
        setConn(state);
        // The conversation is read once the stream has its position (a turn that ends meanwhile is in one or
        // the other), or at once when the stream cannot open; after a gap, what happened meanwhile is read again.
        if (!loadedOnce || (state === 'live' && wasDown)) {
          loadedOnce = true;
          wasDown = false;
          void reload();
        } else if (state === 'reconnecting') wasDown = true;
      },
      (err) => {
        // Refused for good (gone, or not the caller's): say so, and show what can still be read.
        onError(err);
        void reload();
      },
    );
    return () => {
      stop();
      if (frame) clearTimeout(frame);
    };
  }, [id]);

  // Older messages when the top comes into view.
  useEffect(() => {
    const el = top.current;
    if (!el || !scroller.current) return;
    const obs = new IntersectionObserver((entries) => entries.some((x) => x.isIntersecting) && void loadOlder(), { root: scroller.current });
    obs.observe(el);
    return () => obs.disconnect();
  }, [older, ready, id]);

  // What is shown: the transcript, then the running turn's messages (its prompt first, unless the
  // transcript has it already), as one list so that a tool call and its result pair across the two.
  const ended = useMemo(
    () => turns.filter((t) => !['queued', 'running', 'cancelled'].includes(t.status) && t.turn_id !== live?.turn.turn_id),
    [turns, live?.turn.turn_id],
  );
  const view = useMemo(() => {
    const base = toItems(loaded, decisions);
    const paired = pairTurns(base, ended);
    if (!live) return { items: base, footers: paired, liveFrom: base.length };
    const seen = new Set(loaded.map((m) => m.uuid));
    const fresh = live.messages.filter((m) => !seen.has(m.uuid));
    // The prompt is in the transcript already when the page opened mid-turn: its last prompt, not paired with an ended turn.
    let lastPrompt = base.length - 1;
    while (lastPrompt >= 0 && base[lastPrompt]?.kind !== 'user') lastPrompt--;
    const lastItem = base[lastPrompt];
    const inTranscript = lastItem?.kind === 'user' && lastItem.text.trim() === live.turn.prompt.trim() && ![...paired.keys()].some((end) => end >= lastPrompt);
    const promptMessage: Message = { type: 'user', uuid: `live-${live.turn.turn_id}`, message: { role: 'user', content: live.turn.prompt } };
    const all = toItems([...loaded, ...(inTranscript ? [] : [promptMessage]), ...fresh], decisions);
    const liveFrom = inTranscript ? lastPrompt : base.length;
    if (!inTranscript && live.turn.attachments?.length) {
      const p = all[liveFrom];
      if (p?.kind === 'user') p.documents = live.turn.attachments.length;
    }
    return { items: all, footers: pairTurns(all.slice(0, liveFrom), ended), liveFrom };
  }, [loaded, decisions, ended, live?.messages, live?.turn]);
  const { items, footers, liveFrom } = view;
  // A failed turn whose failure the transcript does not show (it never reached the model): its card at the end.
  const lastTurn = turns.at(-1);
  const unshownFailure =
    lastTurn && lastTurn.status === 'failed' && !live && ![...footers.values()].some((t) => t.turn_id === lastTurn.turn_id) && items.at(-1)?.kind !== 'error'
      ? lastTurn
      : null;

  // Follow the newest message unless the person scrolled up; keep the view still when older ones arrive above.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (anchor.current !== null) {
      el.scrollTop = el.scrollHeight - anchor.current;
      anchor.current = null;
    } else if (pinned.current) el.scrollTop = el.scrollHeight;
  }, [items, live?.text, live?.retry, sending, approvals, ready]);

  /** Sends a prompt (with attachments); false when the server refused it (the composer keeps what was written). */
  const send = async (text: string, sent: Attachment[] = [], ifBusy: 'queue' | 'interrupt' = 'queue'): Promise<boolean> => {
    if (!text && sent.length === 0) return true;
    const body =
      sent.length === 0
        ? text
        : [
            ...(text ? [{ type: 'text', text }] : []),
            ...sent.map((a) => ({ type: a.type, source: { type: 'base64', media_type: a.media_type, data: a.data } })),
          ];
    pinned.current = true;
    if (!live) setSending({ text, images: sent.filter((a) => a.url).map((a) => a.url), documents: sent.filter((a) => a.type === 'document').length });
    try {
      const t = await api<Turn>('POST', `/v1/sessions/${id}/turns?wait=false`, { prompt: body, if_busy: ifBusy });
      if (t.status === 'queued') {
        setSending(null);
        setQueue((q) => (q.some((x) => x.turn_id === t.turn_id) ? q : [...q, t]));
      }
      onChanged();
      return true;
    } catch (e) {
      setSending(null);
      onError(e as ApiError);
      return false;
    }
  };
  const sendRef = useRef(send);
  sendRef.current = send;
  const decide = async (a: Approval, behavior: 'allow' | 'deny', scope?: 'once' | 'session') => {
    try {
      await api('POST', `/v1/sessions/${id}/permissions/${a.request_id}`, { behavior, ...(scope ? { scope } : {}) });
      if (behavior === 'deny' && a.tool_use_id) setDecisions((d) => new Map(d).set(a.tool_use_id!, { status: 'denied', by: userId }));
      resolved.current.add(a.request_id);
      setApprovals((x) => x.filter((y) => y.request_id !== a.request_id));
      announce(behavior === 'allow' ? `Allowed ${a.tool_name}` : `Denied ${a.tool_name}`);
      input.current?.focus();
    } catch (e) {
      const err = e as ApiError;
      // Decided meanwhile (another tab, the timeout, an interrupt): the card goes.
      if (err.code === 'PERMISSION_ALREADY_DECIDED' || err.code === 'PERMISSION_REQUEST_NOT_FOUND') {
        resolved.current.add(a.request_id);
        setApprovals((x) => x.filter((y) => y.request_id !== a.request_id));
      }
      onError(err);
    }
  };

  const running = live !== null;
  const render = (it: Item, inLive: boolean) => {
    switch (it.kind) {
      case 'user':
        return <UserBubble key={it.key} item={it} />;
      case 'assistant':
        return <AssistantBubble key={it.key} text={it.text} />;
      case 'tool':
        return <ToolCard key={it.key} item={it} running={inLive} userId={userId} />;
      case 'status':
        return <StatusLine key={it.key} text={it.text} />;
      case 'compact':
        return <StatusLine key={it.key} text="Earlier messages were compacted: Claude sees a summary of them" />;
      case 'error':
        return <ErrorCard key={it.key} text={it.text} onRetry={it.prompt && !inLive ? () => void sendRef.current(it.prompt!) : null} />;
    }
  };
  // Drawn again only when what they show changes (not at each streamed piece of text).
  const drawn = useMemo(
    () =>
      items.map((it, i) => {
        const t = footers.get(i);
        // The CLI's error text, with the code the turn ended with.
        const node =
          it.kind === 'error' && t?.error ? (
            <ErrorCard key={it.key} code={t.error.code} text={it.text} alert={t.turn_id === justFailed} onRetry={() => void sendRef.current(t.prompt)} />
          ) : (
            render(it, running && i >= liveFrom)
          );
        if (!t) return node;
        return [
          node,
          t.status === 'failed' && it.kind !== 'error' ? (
            <ErrorCard
              key={`${t.turn_id}-err`}
              code={t.error?.code}
              text={t.error?.message ?? ''}
              alert={t.turn_id === justFailed}
              onRetry={() => void sendRef.current(t.prompt)}
            />
          ) : null,
          <TurnFooter key={`${t.turn_id}-foot`} turn={t} />,
        ];
      }),
    [items, footers, liveFrom, running, justFailed, userId],
  );
  const empty = ready && items.length === 0 && !live && !sending;
  // Waiting for the model: after the prompt, or after a tool's result (not while a tool runs or an answer is written).
  const lastLive = items.length > liveFrom ? items.at(-1) : undefined;
  const thinking =
    live !== null && !live.text && approvals.length === 0 && (!lastLive || lastLive.kind === 'user' || (lastLive.kind === 'tool' && lastLive.result !== null));

  return (
    <section class="conversation" aria-label="Conversation">
      <div
        class="messages"
        ref={scroller}
        role="region"
        aria-label="Messages"
        tabIndex={0}
        onScroll={(e) => {
          const el = e.currentTarget;
          pinned.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
        }}
      >
        <div ref={top} class="older">
          {older === 'more' ? (
            <button type="button" class="link" onClick={() => void loadOlder()}>
              Load earlier messages
            </button>
          ) : older === 'loading' ? (
            <span class="meta">Loading earlier messages…</span>
          ) : ready && items.length > 0 ? (
            <span class="meta">Start of the conversation</span>
          ) : null}
        </div>
        {!ready ? <p class="meta">Loading…</p> : null}
        {empty ? (
          <div class="hint">
            <p>
              <strong>A new session.</strong> Ask Claude anything about the files in <code>{session.project}</code>: it can read them, run commands and edit
              them, asking you first when its permission mode says so.
            </p>
          </div>
        ) : null}
        {drawn}
        {unshownFailure ? (
          <ErrorCard
            code={unshownFailure.error?.code}
            text={unshownFailure.error?.message ?? ''}
            alert={unshownFailure.turn_id === justFailed}
            onRetry={() => void send(unshownFailure.prompt)}
          />
        ) : null}
        {live ? (
          <div class="live-turn" aria-busy="true">
            {live.text ? <AssistantBubble text={live.text} live /> : null}
            {live.notices.map((n, i) => (
              <StatusLine key={i} text={n} />
            ))}
            {live.retry ? (
              <p class="retry-line" role="status">
                API error {live.retry.error_status ?? '(no response)'}, retry {live.retry.attempt} of {live.retry.max_retries} in{' '}
                {Math.max(1, Math.round(live.retry.retry_delay_ms / 1000))} s
              </p>
            ) : thinking ? (
              <p class="thinking" role="status">
                <span class="dots" aria-hidden="true" /> Claude is thinking…
              </p>
            ) : null}
          </div>
        ) : sending ? (
          <div class="live-turn">
            <UserBubble item={{ kind: 'user', key: 'sending', text: sending.text, images: sending.images, documents: sending.documents, pending: 'sending' }} />
          </div>
        ) : null}
        {approvals.map((a, i) => (
          <ApprovalCard key={a.request_id} approval={a} focus={i === 0} onDecide={(b, s) => decide(a, b, s)} />
        ))}
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
      </div>
      {queue.length > 0 ? (
        <div class="queue" aria-label="Queued turns">
          <strong>Queued</strong>
          {queue.map((t) => (
            <div key={t.turn_id} class="queued">
              <span>{t.prompt.slice(0, 80)}</span>
              <button
                type="button"
                class="link"
                onClick={() =>
                  void api('DELETE', `/v1/sessions/${id}/turns/${t.turn_id}`).then(() => setQueue((q) => q.filter((x) => x.turn_id !== t.turn_id)), onError)
                }
              >
                Cancel
              </button>
            </div>
          ))}
        </div>
      ) : null}
      <Composer
        input={input}
        running={running}
        conn={conn}
        onSend={(text, atts, ifBusy) => send(text, atts, ifBusy)}
        onStop={() => void api('POST', `/v1/sessions/${id}/interrupt`, {}).catch(onError)}
        onError={onError}
      />
    </section>
  );
}
