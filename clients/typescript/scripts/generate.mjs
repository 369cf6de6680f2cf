#!/usr/bin/env node
// Types from the server's OpenAPI document (clients/openapi.json), written to src/generated.ts:
// each component schema as a type, and for each JSON operation its body, query, path parameters and
// success answer. The document's JSON Schemas use a small subset (object, array, anyOf, allOf, enum,
// $ref, the scalar types), which is all this handles; anything else becomes `unknown`.
// No dependency: TypeScript 7 has no compiler API for generators to print with.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const input = process.argv[2] ?? path.join(here, '../../openapi.json');
const output = process.argv[3] ?? path.join(here, '../src/generated.ts');
const doc = JSON.parse(fs.readFileSync(input, 'utf8'));

const ident = (s) => s.replace(/[^A-Za-z0-9_]/g, '_');
// A schema named like a global (Error) gets a suffix, so the module can still use the global.
const GLOBALS = new Set(['Error', 'Object', 'Array', 'Date', 'Record', 'Promise', 'String', 'Number', 'Boolean']);
const typeName = (s) => (GLOBALS.has(ident(s)) ? `${ident(s)}Body` : ident(s));
const pascal = (s) => s.charAt(0).toUpperCase() + s.slice(1);
const key = (k) => (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : JSON.stringify(k));
const doc1 = (s, pad) => (s?.description ? `${pad}/** ${String(s.description).replace(/\*\//g, '*\\/').replace(/\n/g, ' ')} */\n` : '');

function ts(s, pad = '') {
  if (s === true || s === undefined || s === null) return 'unknown';
  if (s === false) return 'never';
  if (s.$ref) return typeName(s.$ref.split('/').pop());
  if (s.enum) return s.enum.length ? s.enum.map((v) => JSON.stringify(v)).join(' | ') : 'never';
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf || s.oneOf) return (s.anyOf ?? s.oneOf).map((x) => wrap(ts(x, pad))).join(' | ');
  if (s.allOf) return s.allOf.map((x) => wrap(ts(x, pad))).join(' & ');
  if (Array.isArray(s.type)) return s.type.map((t) => ts({ ...s, type: t }, pad)).join(' | ');
  switch (s.type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      return `Array<${ts(s.items, pad)}>`;
    case 'object':
    case undefined: {
      if (!s.properties && s.type === undefined) return 'unknown';
      const required = new Set(s.required ?? []);
      const inner = pad + '  ';
      const lines = Object.entries(s.properties ?? {}).map(([k, v]) => `${doc1(v, inner)}${inner}${key(k)}${required.has(k) ? '' : '?'}: ${ts(v, inner)};`);
      const extra = s.additionalProperties;
      if (extra && extra !== true) lines.push(`${inner}[key: string]: ${ts(extra, inner)};`);
      else if (extra === true || (!s.properties && extra === undefined)) lines.push(`${inner}[key: string]: unknown;`);
      return lines.length ? `{\n${lines.join('\n')}\n${pad}}` : 'Record<string, never>';
    }
    default:
      return 'unknown';
  }
}
const wrap = (t) => (/^[\w<>[\]{}"'.,: |&?-]+$/.test(t) && !t.includes('|') && !t.includes('&') ? t : `(${t})`);

let out = `// Generated from the server's OpenAPI document by scripts/generate.mjs: do not edit.\n// ${doc.info.title} ${doc.info.version}\n\n`;
for (const [name, s] of Object.entries(doc.components?.schemas ?? {})) out += `${doc1(s, '')}export type ${typeName(name)} = ${ts(s)};\n\n`;

const ops = [];
for (const [p, methods] of Object.entries(doc.paths)) {
  for (const [method, op] of Object.entries(methods)) {
    if (!op.operationId) continue;
    const id = pascal(ident(op.operationId));
    const params = op.parameters ?? [];
    const group = (where) => params.filter((x) => x.in === where);
    for (const [where, suffix] of [
      ['path', 'Params'],
      ['query', 'Query'],
    ]) {
      const list = group(where);
      if (list.length === 0) continue;
      out += `export type ${id}${suffix} = ${ts({ type: 'object', properties: Object.fromEntries(list.map((x) => [x.name, { ...x.schema, description: x.description ?? x.schema?.description }])), required: list.filter((x) => x.required).map((x) => x.name), additionalProperties: false })};\n\n`;
    }
    const body = op.requestBody?.content?.['application/json']?.schema;
    if (body) out += `export type ${id}Body = ${ts(body)};\n\n`;
    const ok = Object.entries(op.responses ?? {}).filter(([code]) => code.startsWith('2'));
    const json = ok.map(([, r]) => r.content?.['application/json']?.schema).filter(Boolean);
    if (json.length > 0) out += `export type ${id}Response = ${ts(json[0])};\n\n`;
    const stream = ok.some(([, r]) => r.content?.['text/event-stream']);
    ops.push(`  ${key(op.operationId)}: { method: '${method.toUpperCase()}', path: ${JSON.stringify(p)}, stream: ${stream} },`);
  }
}
out += `/** Every operation: its method and path, and whether it answers with server-sent events. */\nexport const operations = {\n${ops.join('\n')}\n} as const;\n`;
fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, out);
console.log(`${path.relative(process.cwd(), output)}: ${Object.keys(doc.components?.schemas ?? {}).length} schemas, ${ops.length} operations`);
