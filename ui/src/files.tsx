/**
 * The files of the open session's folder (browse, view, download, upload by drop) and the cards
 * that say what a turn changed, with its diffs.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, apiRaw, ApiError } from './api';

interface Entry {
  name: string;
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number | null;
  mtime: string;
}
interface Change {
  path: string;
  kind: 'created' | 'modified' | 'deleted';
  size_before: number | null;
  size_after: number | null;
  diff?: string | null;
}

const q = (p: string) => encodeURIComponent(p);

/** A drop target for files: whether something is dragged over it, and the handlers that take the files. */
export function useDrop(onFiles: (files: FileList) => void) {
  const [dragging, setDragging] = useState(false);
  return {
    dragging,
    handlers: {
      onDragOver: (e: DragEvent) => {
        e.preventDefault();
        setDragging(true);
      },
      onDragLeave: () => setDragging(false),
      onDrop: (e: DragEvent) => {
        e.preventDefault();
        setDragging(false);
        if (e.dataTransfer?.files.length) onFiles(e.dataTransfer.files);
      },
    },
  };
}
const size = (n: number | null) => (n === null ? '' : n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 ** 2).toFixed(1)} MB`);

/** Saves a response's bytes under a name (a link cannot carry the API key). */
async function save(res: Response, name: string) {
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function FilesPanel({ sessionId, onError, refresh }: { sessionId: string; onError: (e: ApiError) => void; refresh: number }) {
  const [dir, setDir] = useState('');
  const [entries, setEntries] = useState<Entry[]>([]);
  const [open, setOpen] = useState<{ path: string; text: string | null; image: string | null; size: number } | null>(null);
  const base = `/v1/sessions/${sessionId}/files`;

  const load = async (d = dir) => {
    try {
      const r = await api<{ entries: Entry[] }>('GET', `${base}?path=${q(d)}&limit=1000`);
      setEntries([...r.entries].sort((a, b) => Number(b.type === 'directory') - Number(a.type === 'directory') || (a.name < b.name ? -1 : 1)));
    } catch (e) {
      onError(e as ApiError);
    }
  };
  useEffect(() => {
    void load(dir);
  }, [sessionId, dir, refresh]);

  const view = async (e: Entry) => {
    try {
      const res = await apiRaw('GET', `${base}/content?path=${q(e.path)}`);
      const type = res.headers.get('content-type') ?? '';
      if (type.startsWith('image/') && !type.includes('svg'))
        setOpen({ path: e.path, text: null, image: URL.createObjectURL(await res.blob()), size: e.size ?? 0 });
      else if (/^text\/|json|xml|svg/.test(type) || (e.size ?? 0) < 200_000) {
        const text = await res.text();
        // eslint-disable-next-line no-control-regex
        setOpen({ path: e.path, text: /[\u0000-\u0008]/.test(text.slice(0, 4096)) ? null : text, image: null, size: e.size ?? 0 });
      } else setOpen({ path: e.path, text: null, image: null, size: e.size ?? 0 });
    } catch (err) {
      onError(err as ApiError);
    }
  };
  const download = async (p: string, name: string) => {
    try {
      await save(await apiRaw('GET', `${base}/content?path=${q(p)}&download=true`), name);
    } catch (err) {
      onError(err as ApiError);
    }
  };
  const upload = async (files: FileList) => {
    try {
      for (const f of Array.from(files)) await apiRaw('PUT', `${base}/content?path=${q(dir ? `${dir}/${f.name}` : f.name)}`, await f.arrayBuffer());
      await load();
    } catch (err) {
      onError(err as ApiError);
    }
  };
  const parts = dir ? dir.split('/') : [];
  const drop = useDrop((files) => void upload(files));

  return (
    <aside class={`files${drop.dragging ? ' dragging' : ''}`} aria-label="Files" {...drop.handlers}>
      <nav class="crumbs" aria-label="Folder">
        <button class="link" onClick={() => setDir('')}>
          (session folder)
        </button>
        {parts.map((p, i) => (
          <span key={i}>
            {' / '}
            <button class="link" onClick={() => setDir(parts.slice(0, i + 1).join('/'))}>
              {p}
            </button>
          </span>
        ))}
      </nav>
      <div class="row">
        <button onClick={() => void apiRaw('GET', `${base}/archive?path=${q(dir)}`).then((r) => save(r, `${parts.at(-1) ?? 'session'}.tar.gz`), onError)}>
          Download folder
        </button>
        <button onClick={() => void load()}>Refresh</button>
      </div>
      <ul class="entries">
        {entries.map((e) => (
          <li key={e.path}>
            <button class="link" onClick={() => (e.type === 'directory' ? setDir(e.path) : void view(e))}>
              {e.type === 'directory' ? '📁 ' : e.type === 'symlink' ? '🔗 ' : '📄 '}
              {e.name}
            </button>
            <span class="meta">{size(e.size)}</span>
          </li>
        ))}
        {entries.length === 0 ? <li class="muted">Empty folder. Drop files here to upload them.</li> : null}
      </ul>
      {open ? (
        <section class="viewer" aria-label={`File ${open.path}`}>
          <div class="row">
            <strong>{open.path}</strong>
            <button onClick={() => void download(open.path, open.path.split('/').at(-1)!)}>Download</button>
            <button class="link" onClick={() => setOpen(null)}>
              Close
            </button>
          </div>
          {open.image ? (
            <img src={open.image} alt={open.path} />
          ) : open.text !== null ? (
            <pre>{open.text}</pre>
          ) : (
            <p class="muted">A binary file ({size(open.size)}).</p>
          )}
        </section>
      ) : null}
      <p class="muted hint">Drop files on this panel to upload them to the folder shown.</p>
    </aside>
  );
}

/** What a turn changed: one line per file, its diff on demand. */
export function ChangesCard({
  sessionId,
  turnId,
  files,
  onError,
  onRewound,
}: {
  sessionId: string;
  turnId: string;
  files: Change[];
  onError: (e: ApiError) => void;
  /** After a rewind: the fork to open, when one was asked for. */
  onRewound: (fork: string | null) => void;
}) {
  const [diffs, setDiffs] = useState<Change[] | null>(null);
  // What an undo would change (a dry run), shown for the person to confirm.
  const [undo, setUndo] = useState<Change[] | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const show = async () => {
    if (diffs) return setDiffs(null);
    setDiffs((await api<{ files: Change[] }>('GET', `/v1/sessions/${sessionId}/turns/${turnId}/changes`)).files);
  };
  const rewind = async (dryRun: boolean, fork = false) => {
    try {
      const r = await api<{ files: Change[]; session: { session_id: string } | null }>('POST', `/v1/sessions/${sessionId}/rewind`, {
        turn_id: turnId,
        dry_run: dryRun,
        fork,
      });
      if (dryRun) return setUndo(r.files);
      setUndo(null);
      setDone(r.files.length === 0 ? 'Nothing to put back.' : `Put back ${r.files.length} file${r.files.length === 1 ? '' : 's'}.`);
      onRewound(r.session?.session_id ?? null);
    } catch (err) {
      onError(err as ApiError);
    }
  };
  return (
    <div class="changes" role="status">
      <div class="row">
        <strong>Files changed</strong>
        <span>{files.map((f) => `${f.path} (${f.kind})`).join(', ')}</span>
        <button class="link" onClick={() => void show()}>
          {diffs ? 'Hide diffs' : 'Show diffs'}
        </button>
        <button class="link" onClick={() => void rewind(true)} aria-expanded={undo !== null}>
          Undo…
        </button>
      </div>
      {done ? <p class="muted">{done}</p> : null}
      {undo ? (
        <div class="undo" role="group" aria-label="Undo this turn's changes">
          <p>
            {undo.length === 0
              ? 'The files are already as they were before this turn.'
              : `Puts the folder back as it was before this turn (later changes too): ${undo.map((f) => `${f.path} (${f.kind})`).join(', ')}.`}
          </p>
          <button onClick={() => void rewind(false)}>Put files back</button>
          <button onClick={() => void rewind(false, true)}>Put back and fork the conversation</button>
          <button class="link" onClick={() => setUndo(null)}>
            Cancel
          </button>
        </div>
      ) : null}
      {diffs
        ? diffs.map((f) => (
            <details key={f.path} open>
              <summary>
                {f.path} · {f.kind}
              </summary>
              {f.diff ? (
                <pre class="diff">
                  {f.diff.split('\n').map((l, i) => (
                    <span key={i} class={l.startsWith('+') && !l.startsWith('+++') ? 'add' : l.startsWith('-') && !l.startsWith('---') ? 'del' : ''}>
                      {l}
                      {'\n'}
                    </span>
                  ))}
                </pre>
              ) : (
                <p class="muted">No diff (binary, or too large).</p>
              )}
            </details>
          ))
        : null}
    </div>
  );
}
