/**
 * The layering written in src/README.md, checked on the imports themselves: a module imports only
 * modules of lower layers (or its own folder), so dependencies point one way and no two folders
 * import each other. Only claude/ imports the Agent SDK.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Lowest first: each entry is a folder of src/ or a file at its top. */
const LAYERS: string[][] = [
  ['errors.ts', 'clock.ts', 'schemas.ts', 'network.ts'],
  ['config.ts', 'storage'],
  ['claude', 'workspace', 'offline-model', 'cluster', 'auth'],
  ['types.ts', 'events'],
  ['permissions', 'metrics', 'agents', 'webhooks'],
  ['turns'],
  ['sessions', 'files'],
  ['health', 'plugins'],
  ['recovery.ts'],
  ['services.ts'],
  ['app.ts'],
  ['server.ts'],
];
const layerOf = new Map(LAYERS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return /\.tsx?$/.test(e.name) ? [p] : [];
  });
}

/** The top-level unit of src/ a file belongs to: its first folder, or the file itself. */
const unitOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;

/** Relative imports and re-exports of a file, as resolved source files, and its package imports. */
function importsOf(file: string): { local: string[]; packages: string[] } {
  const text = fs.readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+'([^']+)'/g), ...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map(
    (m) => m[1]!,
  );
  return {
    local: specs.filter((s) => s.startsWith('.')).map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, '.ts')),
    packages: specs.filter((s) => !s.startsWith('.')),
  };
}

/** Every import between two different units: [from file, to file]. */
const edgesIn = (files: string[]) =>
  files.flatMap((f) =>
    importsOf(f)
      .local.filter((t) => unitOf(t) !== unitOf(f))
      .map((t) => [f, t] as const),
  );

/** Imports that do not point to a lower layer. */
function upward(edges: ReadonlyArray<readonly [string, string]>): string[] {
  return edges.filter(([f, t]) => !(layerOf.get(unitOf(t))! < layerOf.get(unitOf(f))!)).map(([f, t]) => `${path.relative(SRC, f)} -> ${path.relative(SRC, t)}`);
}

/** Cycles between units, each as "a -> b -> a". */
function cyclesIn(edges: ReadonlyArray<readonly [string, string]>): string[] {
  const next = new Map<string, Set<string>>();
  for (const [f, t] of edges) (next.get(unitOf(f)) ?? next.set(unitOf(f), new Set()).get(unitOf(f))!).add(unitOf(t));
  const found = new Set<string>();
  const visit = (node: string, trail: string[]) => {
    if (trail.includes(node)) return void found.add([...trail.slice(trail.indexOf(node)), node].join(' -> '));
    if (trail.length > next.size) return;
    for (const n of next.get(node) ?? []) visit(n, [...trail, node]);
  };
  for (const n of next.keys()) visit(n, []);
  return [...found];
}

const files = sourceFiles(SRC);

describe('layering of src/', () => {
  it('names every top-level folder and file of src/ in one layer', () => {
    const units = [...new Set(files.map(unitOf))].sort();
    expect(units.filter((u) => !layerOf.has(u))).toEqual([]);
  });

  it('reads the imports (sessions/service.ts imports turns/ and storage/)', () => {
    const to = edgesIn([path.join(SRC, 'sessions/service.ts')]).map(([, t]) => unitOf(t));
    expect(to).toContain('turns');
    expect(to).toContain('storage');
  });

  it('has imports that point only to lower layers (or within a folder)', () => {
    expect(upward(edgesIn(files))).toEqual([]);
  });

  it('has no cycle between folders', () => {
    expect(cyclesIn(edgesIn(files))).toEqual([]);
  });

  it('refuses an upward import and a cycle', () => {
    const turns = path.join(SRC, 'turns/engine/index.ts');
    const sessions = path.join(SRC, 'sessions/service.ts');
    expect(upward([[turns, sessions]])).toEqual(['turns/engine/index.ts -> sessions/service.ts']);
    expect(
      cyclesIn([
        [turns, sessions],
        [sessions, turns],
      ]),
    ).toContain('turns -> sessions -> turns');
  });

  it('lets only claude/ import the Agent SDK', () => {
    const outside = files.filter((f) => unitOf(f) !== 'claude' && importsOf(f).packages.some((p) => p.startsWith('@anthropic-ai/claude-agent-sdk')));
    expect(outside.map((f) => path.relative(SRC, f))).toEqual([]);
  });
});
