/** The composer: the prompt, pasted or dropped images and PDFs, Send (Queue while a turn runs), Stop, Stop and send. */
import type { RefObject } from 'preact';
import { useState } from 'preact/hooks';
import { ApiError } from './api';
import { useDrop } from './files';

/** An image or PDF waiting in the composer, as the API takes it. */
export interface Attachment {
  name: string;
  type: 'image' | 'document';
  media_type: string;
  data: string;
  url: string;
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

export function Composer({
  input,
  running,
  conn,
  onSend,
  onStop,
  onError,
}: {
  /** The prompt box (the conversation gives it the focus after an approval). */
  input: RefObject<HTMLTextAreaElement>;
  running: boolean;
  conn: 'live' | 'reconnecting';
  /** Sends; false when refused (what was written stays). */
  onSend: (text: string, attachments: Attachment[], ifBusy: 'queue' | 'interrupt') => Promise<boolean>;
  onStop: () => void;
  onError: (e: ApiError) => void;
}) {
  const [prompt, setPrompt] = useState('');
  const [attachments, setAttachments] = useState<Attachment[]>([]);
  const send = async (ifBusy: 'queue' | 'interrupt' = 'queue') => {
    const text = prompt.trim();
    const sent = attachments;
    if (!text && sent.length === 0) return;
    setPrompt('');
    setAttachments([]);
    if (await onSend(text, sent, ifBusy)) {
      for (const a of sent) if (a.url) URL.revokeObjectURL(a.url);
    } else {
      setPrompt(text);
      setAttachments(sent);
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
  return (
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
        ref={input}
        rows={2}
        onPaste={(e) => {
          const files = Array.from(e.clipboardData?.files ?? []);
          if (files.length > 0) {
            e.preventDefault();
            void attach(files);
          }
        }}
        aria-label="Prompt"
        placeholder={running ? 'Claude is working: a new message waits in the queue' : 'Ask Claude… (Enter to send, Shift+Enter for a new line)'}
        value={prompt}
        onInput={(e) => setPrompt((e.target as HTMLTextAreaElement).value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <div class="row composer-actions">
        <span class={`conn ${conn}`} role="status">
          {conn === 'reconnecting' ? 'reconnecting…' : running ? 'running…' : 'idle'}
        </span>
        {running ? (
          <button type="button" onClick={onStop}>
            Stop
          </button>
        ) : null}
        {running ? (
          <button
            type="button"
            disabled={!prompt.trim() && attachments.length === 0}
            onClick={() => void send('interrupt')}
            title="Stop the running turn, then send"
          >
            Stop and send
          </button>
        ) : null}
        <button type="submit" class="primary">
          {running ? 'Queue' : 'Send'}
        </button>
      </div>
    </form>
  );
}
