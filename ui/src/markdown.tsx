/**
 * Model text as GitHub-flavoured markdown (marked), sanitized (DOMPurify: model text is untrusted, so
 * no script, handler, style, form or remote image survives), with code blocks labelled, copyable and
 * highlighted (highlight.js, loaded on first use so the page's first paint does not wait for it).
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';

type Render = (text: string) => string;
let renderer: Render | null = null;
// Fetched at once but not waited for: the first paint does not need it (text shows plain until it is here).
const loading = import('./render-markdown').then((m) => (renderer = m.renderMarkdown));

type Highlighter = (code: HTMLElement) => void;
let highlighter: Promise<Highlighter> | null = null;
const loadHighlighter = () => (highlighter ??= import('./highlight').then((m) => m.highlightElement));

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // Not a secure context (plain http on another host): the old way.
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.style.position = 'fixed';
    area.style.opacity = '0';
    document.body.appendChild(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    return ok;
  }
}

/** Labels each code block with its language and a copy button, then highlights it. */
function decorate(root: HTMLElement, highlight: boolean) {
  for (const pre of Array.from(root.querySelectorAll('pre'))) {
    if (pre.parentElement?.classList.contains('code')) continue;
    const code = pre.querySelector('code');
    const lang = /language-([\w+#.-]+)/.exec(code?.className ?? '')?.[1] ?? '';
    const box = document.createElement('div');
    box.className = 'code';
    const bar = document.createElement('div');
    bar.className = 'code-bar';
    const label = document.createElement('span');
    label.textContent = lang || 'text';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'copy';
    copy.textContent = 'Copy';
    copy.setAttribute('aria-label', `Copy ${lang || 'text'} code`);
    copy.addEventListener('click', () => {
      void copyText((code?.textContent ?? pre.textContent ?? '').replace(/\n$/, '')).then((ok) => {
        const label = copy.getAttribute('aria-label') ?? '';
        copy.textContent = ok ? 'Copied' : 'Copy failed';
        // Said to screen readers too (the button's name is its label).
        copy.setAttribute('aria-label', copy.textContent);
        setTimeout(() => {
          copy.textContent = 'Copy';
          copy.setAttribute('aria-label', label);
        }, 1500);
      });
    });
    bar.append(label, copy);
    pre.replaceWith(box);
    box.append(bar, pre);
    pre.tabIndex = 0;
    if (highlight && code && lang) void loadHighlighter().then((h) => h(code));
  }
}

/** Renders markdown; while `live`, code is not highlighted (it changes with every piece). */
export function Markdown({ text, live = false }: { text: string; live?: boolean }) {
  const [render, setRender] = useState<Render | null>(() => renderer);
  useEffect(() => {
    if (!render) void loading.then((r) => setRender(() => r));
  }, []);
  const html = useMemo(() => (render ? render(text) : null), [render, text]);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (ref.current && html !== null) decorate(ref.current, !live);
  }, [html, live]);
  if (html === null) return <div class="md plain">{text}</div>;
  return <div class="md" ref={ref} dangerouslySetInnerHTML={{ __html: html }} />;
}
