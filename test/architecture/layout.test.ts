/**
 * The folder rules of docs/architecture.md, read from the source: imports between src/ folders form
 * no cycle, the codec imports no server, queue or Redis library, only src/config reads the
 * environment, and nothing outside src/server imports it (it assembles the app).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../helpers.js';

const SRC = path.join(ROOT, 'src');

function sources(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0]!;
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => (m[1] ?? m[2])!);
}

/** folder -> folders it imports (relative imports that leave the folder) */
function folderGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of sources()) {
    const from = folderOf(file);
    if (!graph.has(from)) graph.set(from, new Set());
    for (const spec of importsOf(file)) {
      if (!spec.startsWith('.')) continue;
      const to = folderOf(path.resolve(path.dirname(file), spec));
      if (to !== from && !to.startsWith('..')) graph.get(from)!.add(to);
    }
  }
  return graph;
}

/** The first cycle found (as a path of folders), or null. */
export function findCycle(graph: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 'open');
    stack.push(n);
    for (const m of graph.get(n) ?? []) {
      if (state.get(m) === 'open') return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of graph.keys()) {
    if (!state.has(n)) {
      const c = visit(n);
      if (c) return c;
    }
  }
  return null;
}

describe('source layout', () => {
  it('finds a cycle when there is one (the check itself works)', () => {
    const g = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set<string>()],
    ]);
    assert.deepEqual(findCycle(g), ['a', 'b', 'c', 'a']);
    assert.equal(
      findCycle(
        new Map([
          ['a', new Set(['b'])],
          ['b', new Set<string>()],
        ]),
      ),
      null,
    );
  });

  it('has no import cycle between src/ folders', () => {
    const graph = folderGraph();
    assert.ok(graph.size >= 10, 'every folder is read');
    const cycle = findCycle(graph);
    assert.equal(cycle, null, `folder cycle: ${cycle?.join(' -> ')}`);
  });

  it('keeps the codec pure: no Fastify, BullMQ, ioredis or metrics', () => {
    for (const file of sources(path.join(SRC, 'codec'))) {
      for (const spec of importsOf(file)) {
        assert.ok(
          !/^(fastify|@fastify\/|bullmq|ioredis|prom-client|pino)/.test(spec) &&
            !/\.\.\/(server|routes|workers|metrics|store|pipeline)\//.test(spec),
          `${path.relative(ROOT, file)} imports ${spec}`,
        );
      }
    }
  });

  it('reads the environment only in src/config', () => {
    const readers = sources()
      .filter((f) => /process\.env\b/.test(readFileSync(f, 'utf8')))
      .map((f) => path.relative(SRC, f));
    assert.ok(readers.length > 0);
    assert.deepEqual(
      readers.filter((f) => !f.startsWith(`config${path.sep}`)),
      [],
    );
  });

  it('imports src/server from nowhere else (it assembles the app)', () => {
    const importers = [...folderGraph()].filter(([from, to]) => from !== 'server' && to.has('server')).map(([from]) => from);
    assert.deepEqual(importers, []);
  });
});
