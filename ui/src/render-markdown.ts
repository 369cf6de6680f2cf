/**
 * Markdown to sanitized HTML: marked (GitHub-flavoured), then DOMPurify with an allowlist of what
 * marked makes. Model text is untrusted: nothing may run, load anything (an image or a table
 * background would tell a remote server what the page shows) or look like the page's own controls.
 * A chunk of its own, loaded as the page starts.
 */
import { marked } from 'marked';
import DOMPurify from 'dompurify';

marked.use({
  gfm: true,
  breaks: false,
  renderer: {
    // HTML in the text is shown as text: it never reaches the page as markup (DOMPurify stays the second line).
    html({ text }) {
      return escapeText(text);
    },
    // An image is not loaded: its alt text and address are shown as a link.
    image({ href, text }) {
      const alt = text || 'image';
      return `<a href="${escapeAttr(href)}">[${escapeText(alt)}]</a>`;
    },
  },
});

const escapeText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const escapeAttr = (s: string) => escapeText(s).replace(/"/g, '&quot;');

const ALLOWED_TAGS = [
  'p', 'br', 'hr', 'strong', 'em', 'del', 's', 'code', 'pre', 'blockquote', 'a',
  'ul', 'ol', 'li', 'input', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'table', 'thead', 'tbody', 'tr', 'th', 'td', 'span', 'sup', 'sub', 'kbd',
]; // prettier-ignore
const ALLOWED_ATTR = ['href', 'title', 'align', 'start', 'colspan', 'rowspan', 'class', 'type', 'checked', 'disabled'];

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  // Links open in a new tab and tell the target nothing; anything but http(s), mailto and in-page links is dropped.
  if (node.tagName === 'A') {
    const href = node.getAttribute('href') ?? '';
    if (!/^(https?:|mailto:|#)/i.test(href)) node.removeAttribute('href');
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  // Only a code block's language class (marked's): the page's own classes would let text dress up as its controls.
  const cls = node.getAttribute('class');
  if (cls !== null) {
    const lang = node.tagName === 'CODE' ? /^language-[\w+#.-]+$/.exec(cls)?.[0] : undefined;
    if (lang) node.setAttribute('class', lang);
    else node.removeAttribute('class');
  }
  // A task list's checkbox (GFM) stays a disabled checkbox; no other input survives.
  if (node.tagName === 'INPUT' && (node.getAttribute('type') !== 'checkbox' || !node.hasAttribute('disabled'))) node.remove();
});

/** Sanitized HTML of a markdown text. */
export function renderMarkdown(text: string): string {
  const html = marked.parse(text, { async: false });
  return DOMPurify.sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false });
}
