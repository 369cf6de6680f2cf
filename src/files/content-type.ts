/**
 * @module files/content-type
 * The content type a file is served with, from its extension (text as UTF-8). Whatever the type,
 * the routes send it with a sandboxing Content-Security-Policy and `nosniff`: a user's HTML or SVG
 * never runs as a page of this server's origin.
 */
const TYPES: Record<string, string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  log: 'text/plain',
  html: 'text/html',
  htm: 'text/html',
  css: 'text/css',
  js: 'text/javascript',
  mjs: 'text/javascript',
  cjs: 'text/javascript',
  ts: 'text/plain',
  tsx: 'text/plain',
  jsx: 'text/plain',
  py: 'text/x-python',
  rb: 'text/plain',
  go: 'text/plain',
  rs: 'text/plain',
  java: 'text/plain',
  c: 'text/plain',
  h: 'text/plain',
  cpp: 'text/plain',
  sh: 'text/x-shellscript',
  yaml: 'text/yaml',
  yml: 'text/yaml',
  toml: 'text/plain',
  xml: 'application/xml',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  ico: 'image/x-icon',
  pdf: 'application/pdf',
  zip: 'application/zip',
  gz: 'application/gzip',
  tgz: 'application/gzip',
  tar: 'application/x-tar',
  wasm: 'application/wasm',
};

export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot >= 0 ? name.slice(dot + 1).toLowerCase() : '';
  const t = TYPES[ext] ?? (ext === '' && /(^|\/)(Makefile|Dockerfile|README|LICENSE)$/i.test(name) ? 'text/plain' : 'application/octet-stream');
  return t.startsWith('text/') || t === 'application/json' || t === 'application/xml' ? `${t}; charset=utf-8` : t;
}
