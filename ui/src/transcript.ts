/**
 * What the conversation shows, made from transcript messages (the API's /messages, or the SDK
 * messages of the running turn's events): the person's prompts, Claude's text, one card per tool
 * call with its result, quiet status lines for the CLI's notices, and error cards.
 */
import type { Turn } from './types';

export interface Block {
  type: string;
  text?: unknown;
  id?: string;
  name?: string;
  input?: unknown;
  is_error?: boolean;
  content?: unknown;
  tool_use_id?: string;
  source?: { type?: string; media_type?: string; data?: string };
}
export interface Message {
  type: string;
  uuid: string;
  subtype?: string;
  message?: { role?: string; content?: unknown; model?: string };
}

export type Item =
  | { kind: 'user'; key: string; text: string; images: string[]; documents: number; pending?: 'sending' | 'queued' }
  | { kind: 'assistant'; key: string; text: string; live?: boolean }
  | { kind: 'tool'; key: string; id: string; name: string; input: Record<string, unknown>; result: ToolResult | null }
  | { kind: 'status'; key: string; text: string }
  | { kind: 'error'; key: string; text: string; prompt: string | null }
  | { kind: 'compact'; key: string };

export interface ToolResult {
  text: string;
  isError: boolean;
  /** Set when the call never ran because of its approval: how it was decided, and by whom (a user id, `timeout`, `interrupt`). */
  decision?: { status: 'denied' | 'expired'; by: string | null };
}

/** The decision of each tool call that asked for approval, by tool_use_id (from /permissions?status=all and live events). */
export type Decisions = Map<string, { status: string; by: string | null }>;

// The CLI's own notes in a transcript started from a terminal (a slash command's output, its caveat).
const CLI_NOTE = /^\s*<(local-command-stdout|local-command-stderr|local-command-caveat|command-message)>/;
const INTERRUPTED = /^\[Request interrupted by user( for tool use)?\]$/;
// What the permission hook and the CLI tell the model when a person says no (the server's own words, then the CLI's).
const DENIED = /^(The user denied this tool call\.|The user doesn't want to proceed with this tool use)/;

const blocksOf = (m: Message): Block[] => {
  const c = m.message?.content;
  return typeof c === 'string' ? [{ type: 'text', text: c }] : Array.isArray(c) ? (c as Block[]) : [];
};
const textOf = (b: Block) => (typeof b.text === 'string' ? b.text : '');
const isReminder = (t: string) => t.trimStart().startsWith('<system-reminder>');

/** A tool result's content as text (a string, or text blocks; other blocks are named). */
export function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return content == null ? '' : JSON.stringify(content, null, 2);
  return (content as Block[]).map((b) => (b.type === 'text' ? textOf(b) : `[${b.type}]`)).join('\n');
}

export function toItems(messages: Message[], decisions: Decisions = new Map()): Item[] {
  const items: Item[] = [];
  const tools = new Map<string, Extract<Item, { kind: 'tool' }>>();
  let lastPrompt: string | null = null;
  for (const m of messages) {
    if (m.type === 'system') {
      if (m.subtype === 'compact_boundary') items.push({ kind: 'compact', key: m.uuid });
      continue;
    }
    const blocks = blocksOf(m);
    if (m.type === 'user') {
      const texts: string[] = [];
      const images: string[] = [];
      let documents = 0;
      for (const b of blocks) {
        if (b.type === 'tool_result') {
          const tool = b.tool_use_id ? tools.get(b.tool_use_id) : undefined;
          const text = resultText(b.content);
          const decided = decisions.get(b.tool_use_id ?? '');
          const refused = decided?.status === 'denied' || decided?.status === 'expired';
          const result: ToolResult = { text, isError: b.is_error === true };
          if (b.is_error === true && (refused || DENIED.test(text))) {
            result.decision = { status: decided?.status === 'expired' ? 'expired' : 'denied', by: decided?.by ?? null };
          }
          if (tool) tool.result = result;
          else items.push({ kind: 'status', key: `${m.uuid}-${b.tool_use_id ?? ''}`, text: `Tool result: ${text.slice(0, 200)}` });
        } else if (b.type === 'text') {
          const t = textOf(b);
          if (isReminder(t) || CLI_NOTE.test(t)) continue;
          const command = /^\s*<command-name>([^<]*)<\/command-name>/.exec(t)?.[1];
          if (command) items.push({ kind: 'status', key: `${m.uuid}-cmd`, text: `Ran ${command.trim()}` });
          else if (INTERRUPTED.test(t.trim())) items.push({ kind: 'status', key: `${m.uuid}-stop`, text: 'Stopped by you' });
          else texts.push(t);
        } else if (b.type === 'image' && b.source?.type === 'base64') {
          images.push(`data:${String(b.source.media_type)};base64,${String(b.source.data)}`);
        } else if (b.type === 'document') documents++;
      }
      if (texts.length > 0 || images.length > 0 || documents > 0) {
        const text = texts.join('\n\n');
        lastPrompt = text;
        items.push({ kind: 'user', key: m.uuid, text, images, documents });
      }
      continue;
    }
    if (m.type !== 'assistant') continue;
    // The CLI's own stand-in for a failed model call ("API Error: 500 ..."): an error card, not an answer.
    const synthetic = m.message?.model === '<synthetic>';
    for (const [i, b] of blocks.entries()) {
      if (b.type === 'text') {
        const t = textOf(b);
        if (!t.trim()) continue;
        if (synthetic) {
          if (t.trim() === 'No response requested.') continue;
          items.push({ kind: 'error', key: `${m.uuid}-${i}`, text: t, prompt: lastPrompt });
          continue;
        }
        const prev = items.at(-1);
        // Consecutive text of one answer reads as one message.
        if (prev?.kind === 'assistant') prev.text += `\n\n${t}`;
        else items.push({ kind: 'assistant', key: `${m.uuid}-${i}`, text: t });
      } else if (b.type === 'tool_use' && b.id) {
        const input = b.input && typeof b.input === 'object' ? (b.input as Record<string, unknown>) : {};
        const tool = { kind: 'tool' as const, key: b.id, id: b.id, name: b.name ?? 'tool', input, result: null };
        tools.set(b.id, tool);
        items.push(tool);
      }
    }
  }
  return items;
}

/**
 * Pairs finished turns with the prompts they sent, from the newest: a prompt whose turn is not among
 * the next few (the running turn's, already in the transcript) is left unpaired, and a turn whose
 * prompt never reached the transcript is passed over. Returns the index of each paired prompt's last item.
 */
export function pairTurns(items: Item[], turns: Turn[]): Map<number, Turn> {
  const byEnd = new Map<number, Turn>();
  const prompts = items.flatMap((it, i) => (it.kind === 'user' ? [i] : []));
  let k = turns.length - 1;
  for (let p = prompts.length - 1; p >= 0 && k >= 0; p--) {
    const it = items[prompts[p]];
    if (it?.kind !== 'user') continue;
    for (let j = k; j >= Math.max(0, k - 5); j--) {
      if (turns[j]?.prompt.trim() !== it.text.trim()) continue;
      const next = prompts[p + 1];
      byEnd.set(next !== undefined ? next - 1 : items.length - 1, turns[j]);
      k = j - 1;
      break;
    }
  }
  return byEnd;
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** One line saying what a tool call does ("ls -la /", "src/app.ts"). */
export function toolSummary(name: string, input: Record<string, unknown>): string {
  const first = (...keys: string[]) => keys.map((k) => str(input[k])).find(Boolean) ?? '';
  const line =
    name === 'Bash'
      ? first('command')
      : ['Read', 'Write', 'Edit', 'MultiEdit', 'NotebookEdit'].includes(name)
        ? first('file_path', 'notebook_path')
        : ['Glob', 'Grep'].includes(name)
          ? [first('pattern'), first('path')].filter(Boolean).join(' in ')
          : name === 'WebFetch'
            ? first('url')
            : name === 'WebSearch'
              ? first('query')
              : name === 'Task' || name === 'Agent'
                ? first('description', 'prompt')
                : (Object.values(input).find((v): v is string => typeof v === 'string') ?? '');
  return line.split('\n')[0]?.slice(0, 160) ?? '';
}

const linesOf = (s: string) => (s === '' ? [] : s.replace(/\n$/, '').split('\n'));

/** A line diff of two texts: ' ' kept, '-' removed, '+' added (longest common subsequence; past 400x400 lines, all of one then the other). */
export function lineDiff(before: string, after: string): string[] {
  const a = linesOf(before);
  const b = linesOf(after);
  if (a.length * b.length > 160_000) return [...a.map((l) => `-${l}`), ...b.map((l) => `+${l}`)];
  // lcs[i][j]: the length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint16Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(` ${a[i++]}`);
      j++;
    } else if (i < a.length && (j === b.length || lcs[i + 1][j] >= lcs[i][j + 1])) out.push(`-${a[i++]}`);
    else out.push(`+${b[j++]}`);
  }
  return out;
}

/** The lines an Edit, MultiEdit or Write call changes, as a diff; null for other tools. */
export function toolDiff(name: string, input: Record<string, unknown>): string[] | null {
  if (name === 'Write') return linesOf(str(input.content)).map((l) => `+${l}`);
  if (name === 'Edit') return lineDiff(str(input.old_string), str(input.new_string));
  if (name === 'MultiEdit' && Array.isArray(input.edits)) {
    return (input.edits as Array<Record<string, unknown>>).flatMap((e, i) => [...(i > 0 ? ['@@'] : []), ...lineDiff(str(e.old_string), str(e.new_string))]);
  }
  return null;
}

/** "1.2 s", "340 ms", "2 min 5 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** "$0.0123" (4 decimals under a dollar). */
export const money = (usd: number) => `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;

/** "1,234". */
export const count = (n: number) => n.toLocaleString('en-US');

/** "14:05" today, "Dec 3, 14:05" before. */
export function clock(iso: string, now = new Date()): string {
  const d = new Date(iso);
  const time = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  return d.toDateString() === now.toDateString() ? time : `${d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' })}, ${time}`;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", then the date. */
export function ago(iso: string, now = Date.now()): string {
  const s = (now - Date.parse(iso)) / 1000;
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  if (s < 7 * 86_400) return `${Math.round(s / 86_400)} d ago`;
  return new Date(iso).toLocaleDateString('en-US', { year: 'numeric', month: 'short', day: 'numeric' });
}
