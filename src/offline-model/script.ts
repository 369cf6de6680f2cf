/**
 * @module offline-model/script
 * What the offline model answers. It is a pure function of the request: the model keeps no
 * state, so anything it "recalls" must come from the history the CLI sent (which is what
 * makes it a proof that resume works).
 *
 * Directives a prompt may carry (for tests and demos), in double brackets:
 * - `[[slow:MS]]`   wait MS milliseconds before answering (and stream the text slowly)
 * - `[[fail:STATUS]]` answer with that HTTP status and an Anthropic error body
 * - `[[cut]]`       start the stream, then drop the connection mid-message
 * - `[[bash:CMD]]`  ask for a Bash tool call running CMD; after its result, report it
 * - `[[tool:NAME JSON]]` ask for a call of any tool NAME with the JSON object as its input
 *   (e.g. `[[tool:Read {"file_path":"/etc/hostname"}]]`); after its result, report it
 * - `[[loop:NAME JSON]]` like `tool`, but call it again after every result (a turn that never ends by itself)
 * - `[[json:JSON]]`  answer with that JSON: through the StructuredOutput tool when the request offers it
 *   (a turn with an output schema), else as text
 * - `[[tools]]`     answer with the names of the tools the request offers, comma-separated
 * - `[[request]]`   answer with what the request asked of the model: its model, thinking, effort and the
 *   end and length of its system prompt (`request: {"model":...}`)
 * - `[[received]]`  answer with what the prompt's message held: each content block's type, and for
 *   an image or document its media type and decoded size (`text, image image/png 68 bytes`)
 * - `[[say:TEXT]]`  answer exactly TEXT
 * - `[[words:N]]`   answer with N words (up to 100,000), streamed one word per event: a long answer
 * - `[[clock:N]]`   stream N pieces (up to 10,000), each `@T ` where T is this machine's clock in ms
 *   (`performance.timeOrigin + performance.now()`) when the piece was written: a reader measures
 *   how late each piece reached it (with `[[slow:MS]]` the pieces are spaced out)
 */

/** One content block of an Anthropic Messages request, as much as we read of it. */
interface Block {
  type: string;
  text?: string;
  content?: unknown;
  is_error?: boolean;
  name?: string;
  source?: { type?: string; media_type?: string; data?: string };
}
interface Message {
  role: 'user' | 'assistant' | 'system';
  content: string | Block[];
}

export type Plan =
  | { kind: 'fail'; status: number; message: string }
  | {
      kind: 'reply';
      delayMs: number;
      chunkDelayMs: number;
      text: string;
      toolUse?: { name: string; input: Record<string, unknown> };
      cut: boolean;
      /** Pieces stamped with the clock when written (the text is then made as they are sent). */
      clock?: number;
    };

/** The text a person wrote in a user message: text blocks without the CLI's system reminders. */
export function userText(m: Message): string {
  if (typeof m.content === 'string') return m.content;
  return m.content
    .filter((b) => b.type === 'text' && typeof b.text === 'string' && !b.text.trimStart().startsWith('<system-reminder>'))
    .map((b) => b.text)
    .join('\n')
    .trim();
}

/**
 * Text the CLI adds to a user message that is not a person's prompt: reminders, an interruption
 * notice, an image's file note, the nudge to call the structured-output tool again, the note that
 * goes with a deferred call's result when the session resumes.
 */
const NOT_PROMPTS = ['<system-reminder>', '[Request interrupted', '[Image', '[structured-output-enforce]', 'Continue from where you left off'];

/**
 * The newest prompt in a user message. After an interrupt the CLI sends the interrupted prompt,
 * its interruption notice and the new prompt in one message: only the last one is the prompt.
 */
export function lastPrompt(m: Message): string {
  if (typeof m.content === 'string') return m.content.trim();
  const texts = m.content
    .filter((b) => b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text!.trim())
    .filter((t) => t !== '' && !NOT_PROMPTS.some((p) => t.startsWith(p)));
  return texts[texts.length - 1] ?? '';
}

function toolResults(m: Message): Block[] {
  return typeof m.content === 'string' ? [] : m.content.filter((b) => b.type === 'tool_result');
}

function resultText(b: Block): string {
  if (typeof b.content === 'string') return b.content;
  if (Array.isArray(b.content)) {
    return (b.content as Block[]).map((c) => (typeof c.text === 'string' ? c.text : '')).join('\n');
  }
  return '';
}

const directive = (text: string, name: string): string | undefined => {
  const m = new RegExp(`\\[\\[${name}(?::([\\s\\S]*?))?\\]\\]`).exec(text);
  return m ? (m[1] ?? '') : undefined;
};

/** What a request offers besides its messages. */
export interface RequestContext {
  tools?: ReadonlyArray<{ name?: string }>;
  model?: string | undefined;
  system?: unknown;
  thinking?: unknown;
  output_config?: unknown;
}

/** The system prompt's text, however the request carries it (a string or text blocks). */
const systemText = (s: unknown): string =>
  typeof s === 'string' ? s : Array.isArray(s) ? (s as Block[]).map((b) => (typeof b.text === 'string' ? b.text : '')).join('\n') : '';

/** Decides the answer to one Messages request. */
export function plan(messages: Message[], req: RequestContext = {}): Plan {
  // The CLI may put notes of its own (the sandbox's) as `system` messages between them: they are not the conversation.
  const last = messages.filter((m) => m.role === 'user' || m.role === 'assistant').at(-1);
  const userMessages = messages.filter((m) => m.role === 'user');
  // The prompt that started this exchange: the last user message with text of its own.
  const promptMsg = [...userMessages].reverse().find((m) => lastPrompt(m) !== '');
  const prompt = promptMsg ? lastPrompt(promptMsg) : '';
  const slow = Number(directive(prompt, 'slow') ?? 0) || 0;
  const base = { delayMs: slow, chunkDelayMs: slow > 0 ? Math.min(50, slow / 20) : 0, cut: false };

  // A tool result came back: report it and end the turn (or call the tool again when looping).
  // (A message with a prompt of its own is a new turn: results in it belong to a call the last one left open.)
  const results = last && last.role === 'user' && lastPrompt(last) === '' ? toolResults(last) : [];
  const loop = directive(prompt, 'loop');
  if (results.length > 0 && loop !== undefined) return toolCall(loop, base, 'I will call it again.');
  if (results.length > 0) {
    const r = results[0]!;
    const body = resultText(r).trim();
    return {
      kind: 'reply',
      ...base,
      delayMs: 0,
      text: r.is_error ? `The tool call was refused or failed: ${body}` : `The command ran. Output: ${body || '(none)'}`,
    };
  }

  const fail = directive(prompt, 'fail');
  if (fail !== undefined) {
    const status = Number(fail) || 500;
    return { kind: 'fail', status, message: `offline model: failing with ${status} as asked` };
  }
  const json = directive(prompt, 'json');
  if (json !== undefined) {
    if ((req.tools ?? []).some((t) => t.name === 'StructuredOutput')) return toolCall(`StructuredOutput ${json}`, base);
    return { kind: 'reply', ...base, text: json };
  }
  const tool = directive(prompt, 'tool') ?? loop;
  if (tool !== undefined) return toolCall(tool, base);
  if (directive(prompt, 'tools') !== undefined) {
    return { kind: 'reply', ...base, text: `tools: ${(req.tools ?? []).map((t) => t.name ?? '?').join(', ')}` };
  }
  if (directive(prompt, 'request') !== undefined) {
    const effort = (req.output_config as { effort?: unknown } | undefined)?.effort ?? null;
    const system = systemText(req.system);
    return {
      kind: 'reply',
      ...base,
      text: `request: ${JSON.stringify({ model: req.model ?? null, thinking: req.thinking ?? null, effort, system_end: system.trimEnd().slice(-120), system_chars: system.length })}`,
    };
  }
  if (directive(prompt, 'received') !== undefined && promptMsg) return { kind: 'reply', ...base, text: `received: ${describe(promptMsg)}` };
  const bash = directive(prompt, 'bash');
  if (bash !== undefined) {
    return {
      kind: 'reply',
      ...base,
      text: 'I will run a command.',
      toolUse: { name: 'Bash', input: { command: bash, description: 'Run the requested command' } },
    };
  }
  const cut = directive(prompt, 'cut') !== undefined;
  const say = directive(prompt, 'say');
  const words = directive(prompt, 'words');
  const clock = directive(prompt, 'clock');
  if (say === undefined && clock !== undefined) return { kind: 'reply', ...base, cut, text: '', clock: Math.min(10_000, Math.max(1, Number(clock) || 1)) };
  if (say === undefined && words !== undefined) return { kind: 'reply', ...base, cut, text: longText(Math.min(100_000, Math.max(1, Number(words) || 1))) };
  return { kind: 'reply', ...base, cut, text: say ?? answer(prompt, userMessages.map(userText)) };
}

/** A call of tool NAME with the JSON object after it (`NAME {"a":1}`). */
function toolCall(spec: string, base: { delayMs: number; chunkDelayMs: number; cut: boolean }, say?: string): Plan {
  const m = /^\s*([A-Za-z_][\w.-]*)\s*([\s\S]*)$/.exec(spec);
  let input: unknown = {};
  try {
    input = m && m[2]!.trim() ? JSON.parse(m[2]!) : {};
  } catch {
    input = null;
  }
  if (!m || input === null || typeof input !== 'object' || Array.isArray(input)) {
    return { kind: 'reply', ...base, text: 'offline model: [[tool:NAME JSON]] needs a tool name and a JSON object' };
  }
  return { kind: 'reply', ...base, text: say ?? `I will call ${m[1]}.`, toolUse: { name: m[1]!, input: input as Record<string, unknown> } };
}

/** The content blocks of a user message, as `[[received]]` reports them (system reminders left out). */
function describe(m: Message): string {
  if (typeof m.content === 'string') return 'text';
  return m.content
    .filter((b) => !(b.type === 'text' && (b.text ?? '').trimStart().startsWith('<system-reminder>')))
    .map((b) => {
      if ((b.type === 'image' || b.type === 'document') && b.source) {
        const bytes = b.source.type === 'base64' && b.source.data ? Buffer.from(b.source.data, 'base64').length : 0;
        return `${b.type} ${b.source.media_type ?? '?'} ${bytes} bytes`;
      }
      return b.type;
    })
    .join(', ');
}

const VOCABULARY = 'the quick brown fox jumps over lazy dogs while seven bright colors fill every open window of a small house by the river'.split(' ');

/** `n` words of plain text (about 5.5 bytes a word), the same every time. */
function longText(n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(VOCABULARY[(i * 7 + Math.floor(i / VOCABULARY.length)) % VOCABULARY.length]!);
  return `${out.join(' ')}.`;
}

/** The scripted conversation: remember and recall facts, otherwise acknowledge. */
function answer(prompt: string, history: string[]): string {
  const clean = prompt.replace(/\[\[[\s\S]*?\]\]/g, '').trim();
  const remember = /remember:?\s*(?:that\s+)?my\s+(.+?)\s+is\s+(.+?)[.!]?$/i.exec(clean);
  if (remember) return `Got it. I will remember that your ${remember[1]} is ${remember[2]}.`;
  const ask = /what\s+is\s+my\s+(.+?)\?*$/i.exec(clean);
  if (ask) {
    const topic = ask[1]!.toLowerCase();
    for (const earlier of [...history].reverse()) {
      const m = /my\s+(.+?)\s+is\s+(.+?)[.!]?$/im.exec(earlier.replace(/\[\[[\s\S]*?\]\]/g, ''));
      if (m && m[1]!.toLowerCase() === topic) return `Your ${m[1]} is ${m[2]}.`;
    }
    return `I don't know your ${ask[1]}: you have not told me in this conversation.`;
  }
  const turns = history.filter((h) => h !== '').length;
  return `(offline model) You said: "${clean || '(nothing)'}". This conversation has ${turns} message${turns === 1 ? '' : 's'} from you so far.`;
}
