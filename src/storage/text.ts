/**
 * @module storage/text
 * Text from the CLI (a turn's result, its error) stored losslessly on both dialects. PostgreSQL's
 * text refuses NUL (U+0000): such a string is stored as a mark (U+E000, a private-use character)
 * and its JSON, which has no raw NUL; a string that starts with the mark is stored the same way,
 * so reading back is never ambiguous. Everything else is stored as it is. (Clients' text with a
 * NUL is refused at the door; events are JSON already.)
 */
const MARK = '\uE000';

export function storeText<T extends string | null | undefined>(s: T): T {
  if (typeof s !== 'string' || (!s.includes('\u0000') && !s.startsWith(MARK))) return s;
  return (MARK + JSON.stringify(s)) as T;
}

export function loadText<T extends string | null | undefined>(s: T): T {
  if (typeof s !== 'string' || !s.startsWith(MARK)) return s;
  try {
    const v: unknown = JSON.parse(s.slice(1));
    return (typeof v === 'string' ? v : s) as T;
  } catch {
    return s;
  }
}
