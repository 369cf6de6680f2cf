/** The pieces of a conversation: prompt and answer bubbles, tool cards, status lines, error, approval and turn cards. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Markdown } from './markdown';
import { clock, count, duration, money, toolDiff, toolSummary, type Item } from './transcript';
import type { Approval, Turn } from './types';

/** Keys within this long after an approval took the focus are ignored (the person was typing something else). */
const KEY_GUARD_MS = 400;
/** Long tool output is folded to this many lines until opened. */
const FOLD_LINES = 12;

export function UserBubble({ item }: { item: Extract<Item, { kind: 'user' }> }) {
  return (
    <div class={`bubble user${item.pending ? ' pending' : ''}`}>
      {item.images.map((src, i) => (
        <img key={i} class="attached" alt="An attached image" src={src} />
      ))}
      {item.documents > 0 ? <span class="attached-doc">📄 {item.documents === 1 ? 'PDF document' : `${item.documents} PDF documents`}</span> : null}
      {item.text ? <p class="prompt-text">{item.text}</p> : null}
      {item.pending ? <span class="meta">{item.pending === 'queued' ? 'Queued: runs after the current turn' : 'Sending…'}</span> : null}
    </div>
  );
}

export function AssistantBubble({ text, live }: { text: string; live?: boolean }) {
  return (
    <div class={`bubble assistant${live ? ' live' : ''}`}>
      <Markdown text={text} live={live ?? false} />
    </div>
  );
}

/** Who said no to a tool call, in words. */
function refusal(name: string, d: NonNullable<NonNullable<Extract<Item, { kind: 'tool' }>['result']>['decision']>, userId: string | null): string {
  if (d.status === 'expired' || d.by === 'timeout') return `No answer in time: ${name} was not run`;
  if (d.by === 'interrupt') return `${name} was not run: the turn was stopped`;
  if (d.by === null || d.by === userId) return `You denied ${name}`;
  return `${d.by} denied ${name}`;
}

/** Lines of a diff ('+' added, '-' removed, ' ' kept, '@@' between edits), coloured. */
function Diff({ lines, label }: { lines: string[]; label?: string }) {
  return (
    <pre class="diff" aria-label={label}>
      {lines.map((l, i) => (
        <span key={i} class={l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : l === '@@' ? 'hunk' : 'same'}>
          {l}
          {'\n'}
        </span>
      ))}
    </pre>
  );
}

export function ToolCard({ item, running, userId }: { item: Extract<Item, { kind: 'tool' }>; running: boolean; userId: string | null }) {
  const { name, input, result } = item;
  const summary = toolSummary(name, input);
  // (Before any return: a hook is called on every render.)
  const diff = useMemo(() => toolDiff(name, input), [name, input]);
  if (result?.decision) {
    return (
      <p class="status-line" role="note">
        {refusal(name, result.decision, userId)}
        {summary ? <code>{summary}</code> : null}
        {result.decision.status === 'denied' && !/^The user (denied|doesn't want)/.test(result.text) && result.text ? <span> · “{result.text}”</span> : null}
      </p>
    );
  }
  const state = result ? (result.isError ? 'error' : 'done') : running ? 'running' : 'stopped';
  const lines = result?.text ? result.text.split('\n') : [];
  const long = lines.length > FOLD_LINES;
  return (
    <details class={`tool-card ${state}`} open={state === 'running' || state === 'error' || diff !== null || lines.length > 0}>
      <summary>
        <span class="tool-name">{name}</span>
        {summary ? <code class="tool-summary">{summary}</code> : null}
        <span class={`tool-state ${state}`}>{state === 'running' ? 'running…' : state === 'error' ? 'failed' : state === 'stopped' ? 'not run' : 'done'}</span>
      </summary>
      {diff ? (
        <Diff lines={diff} label={`Changes to ${typeof input.file_path === 'string' ? input.file_path : 'the file'}`} />
      ) : Object.keys(input).length > 0 && name !== 'Bash' ? (
        <pre class="tool-input">{JSON.stringify(input, null, 2)}</pre>
      ) : null}
      {result && result.text ? <ToolOutput lines={lines} long={long} /> : null}
    </details>
  );
}

function ToolOutput({ lines, long }: { lines: string[]; long: boolean }) {
  const [all, setAll] = useState(false);
  const shown = long && !all ? lines.slice(0, FOLD_LINES) : lines;
  return (
    <div class="tool-output">
      <pre>{shown.join('\n')}</pre>
      {long ? (
        <button type="button" class="link" onClick={() => setAll((v) => !v)}>
          {all ? 'Show less' : `Show all ${lines.length} lines`}
        </button>
      ) : null}
    </div>
  );
}

export function StatusLine({ text }: { text: string }) {
  return (
    <p class="status-line" role="note">
      {text}
    </p>
  );
}

/** A turn that failed: its code and message, and a button that sends its prompt again. */
export function ErrorCard({ code, text, onRetry, alert = false }: { code?: string | undefined; text: string; onRetry: (() => void) | null; alert?: boolean }) {
  // Announced only when it just happened, not for every past failure a page of history shows.
  return (
    <div class="error-card" role={alert ? 'alert' : undefined}>
      <strong>{code ? `Failed: ${code}` : 'Failed'}</strong>
      <p>{text}</p>
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Retry
        </button>
      ) : null}
    </div>
  );
}

/** Time, tokens and cost of a finished turn. */
export function TurnFooter({ turn }: { turn: Turn }) {
  const parts: string[] = [];
  if (turn.finished_at) parts.push(clock(turn.finished_at));
  if (turn.duration_ms !== null) parts.push(duration(turn.duration_ms));
  if (turn.usage) parts.push(`${count(turn.usage.input_tokens)} in · ${count(turn.usage.output_tokens)} out tokens`);
  if (turn.cost_usd !== null) parts.push(money(turn.cost_usd));
  if (turn.status === 'interrupted') parts.push('stopped');
  if (parts.length === 0) return null;
  return (
    <p class="turn-footer" aria-label="Turn details">
      {parts.join(' · ')}
    </p>
  );
}

/**
 * A tool call waiting for the person, in the conversation: focus moves to it, and A (allow once),
 * S (allow for the session) and D (deny) answer it from the keyboard.
 */
export function ApprovalCard({
  approval,
  onDecide: decide,
  focus,
}: {
  approval: Approval;
  onDecide: (behavior: 'allow' | 'deny', scope?: 'once' | 'session') => Promise<void>;
  focus: boolean;
}) {
  const ref = useRef<HTMLDivElement>(null);
  // One answer at a time: a second key press or click waits for the first to be taken (or refused).
  const [deciding, setDeciding] = useState(false);
  const busy = useRef(false);
  const onDecide = (behavior: 'allow' | 'deny', scope?: 'once' | 'session') => {
    if (busy.current) return;
    busy.current = true;
    setDeciding(true);
    void decide(behavior, scope).finally(() => {
      busy.current = false;
      setDeciding(false);
    });
  };
  /** When focus was moved here: keys pressed just after are what the person was typing elsewhere, not an answer. */
  const focusedAt = useRef(0);
  useEffect(() => {
    const active = document.activeElement;
    // Not taken from a prompt being written.
    const typing = (active instanceof HTMLTextAreaElement || active instanceof HTMLInputElement) && active.value !== '';
    if (focus && !typing) {
      ref.current?.focus();
      focusedAt.current = performance.now();
    }
  }, [approval.request_id, focus]);
  const summary = toolSummary(approval.tool_name, approval.input);
  const diff = toolDiff(approval.tool_name, approval.input);
  return (
    <div
      ref={ref}
      class="approval-card"
      role="group"
      tabIndex={-1}
      aria-label={`Tool approval: ${approval.tool_name}`}
      aria-describedby={`approval-${approval.request_id}`}
      onKeyDown={(e) => {
        if (e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLInputElement || e.ctrlKey || e.metaKey || e.altKey) return;
        if (e.repeat || performance.now() - focusedAt.current < KEY_GUARD_MS) return;
        const k = e.key.toLowerCase();
        if (k === 'a') onDecide('allow', 'once');
        else if (k === 's') onDecide('allow', 'session');
        else if (k === 'd') onDecide('deny');
        else return;
        e.preventDefault();
      }}
    >
      <h3>Claude wants to use {approval.tool_name}</h3>
      <div id={`approval-${approval.request_id}`}>
        {summary ? <code class="tool-summary">{summary}</code> : null}
        {diff ? <Diff lines={diff} /> : <pre class="tool-input">{JSON.stringify(approval.input, null, 2)}</pre>}
      </div>
      <div class="row">
        <button type="button" disabled={deciding} onClick={() => onDecide('allow', 'once')} aria-keyshortcuts="A">
          Allow once <kbd>A</kbd>
        </button>
        <button type="button" disabled={deciding} onClick={() => onDecide('allow', 'session')} aria-keyshortcuts="S">
          Allow for session <kbd>S</kbd>
        </button>
        <button type="button" class="danger" disabled={deciding} onClick={() => onDecide('deny')} aria-keyshortcuts="D">
          Deny <kbd>D</kbd>
        </button>
      </div>
    </div>
  );
}
