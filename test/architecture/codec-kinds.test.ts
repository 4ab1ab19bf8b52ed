/**
 * The codec kind table (src/codec/kinds/) is the one place kinds are named and scaled: every container
 * code has exactly one kind, each ladder is the harness's measured settings, and no source file
 * outside src/codec/kinds/ writes a kind's name as a string of its own.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { CodecKind } from '../../src/codec/container.js';
import { KINDS } from '../../src/codec/kinds/table.js';
import { ROOT } from '../helpers.js';

const SRC = path.join(ROOT, 'src');
const KINDS_DIR = path.join(SRC, 'codec', 'kinds');

function sources(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/**
 * The string literals of a TypeScript source with their line numbers, comments skipped. A template
 * literal counts only when it has no substitution (its text is then a plain string); code inside a
 * substitution is read like any other code.
 */
export function stringLiterals(text: string): { value: string; line: number }[] {
  const out: { value: string; line: number }[] = [];
  let line = 1;
  let i = 0;
  const braces: number[] = []; // per open substitution, the brace depth where it closes
  let depth = 0;
  const readQuoted = (quote: string): string => {
    let value = '';
    i++;
    while (i < text.length && text[i] !== quote) {
      if (text[i] === '\\') value += text[i++];
      if (text[i] === '\n') line++;
      value += text[i++];
    }
    i++;
    return value;
  };
  // A template from its opening backtick or from the `}` that closes a substitution.
  const readTemplate = (startLine: number, whole: boolean): void => {
    let value = '';
    for (;;) {
      if (i >= text.length) return;
      const ch = text[i]!;
      if (ch === '\\') {
        value += ch + (text[i + 1] ?? '');
        i += 2;
      } else if (ch === '`') {
        i++;
        if (whole) out.push({ value, line: startLine });
        return;
      } else if (ch === '$' && text[i + 1] === '{') {
        i += 2;
        braces.push(depth);
        depth++;
        return;
      } else {
        if (ch === '\n') line++;
        value += ch;
        i++;
      }
    }
  };
  while (i < text.length) {
    const ch = text[i]!;
    const next = text[i + 1];
    if (ch === '\n') {
      line++;
      i++;
    } else if (ch === '/' && next === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      for (; i < stop; i++) if (text[i] === '\n') line++;
    } else if (ch === "'" || ch === '"') {
      const at = line;
      out.push({ value: readQuoted(ch), line: at });
    } else if (ch === '`') {
      i++;
      readTemplate(line, true);
    } else if (ch === '{') {
      depth++;
      i++;
    } else if (ch === '}') {
      depth--;
      i++;
      if (braces.length > 0 && braces[braces.length - 1] === depth) {
        braces.pop();
        readTemplate(line, false);
      }
    } else i++;
  }
  return out;
}

/** Names a kind goes by: its own, its harness name, its inspect label. Some are also other things:
 * avif, webp and jpeg are image-format names (decoded inputs, outputs, what a backend reads), and
 * `vlmpress`, the harness's name of the learned codec, is the product's (service name, request
 * field). There they stay; as a codec they appear only beside a word naming the codec. */
const AMBIGUOUS = new Set(['avif', 'webp', 'jpeg', 'vlmpress']);
const kindNames = new Set(KINDS.flatMap((k) => [k.name, k.harnessName, ...(k.label ? [k.label] : [])]));

/** `name:line: 'literal'` for each kind name a source writes as a string. */
function offences(name: string, text: string): string[] {
  const lines = text.split('\n');
  return stringLiterals(text).flatMap(({ value, line }) => {
    if (!kindNames.has(value)) return [];
    if (AMBIGUOUS.has(value) && !/codec/i.test(lines[line - 1] ?? '')) return [];
    return [`${name}:${line}: '${value}'`];
  });
}

describe('codec kind table', () => {
  it('reads string literals as the check needs (the check itself works)', () => {
    const text = [
      "const a = 'semantic-avif'; // 'learned' in a comment",
      '/* "avif-screen" */ const b = `x ${`learned`} y`;',
      'const c = `${codec === "jpeg" ? 1 : 2}`; const url = "http://x//y";',
    ].join('\n');
    assert.deepEqual(
      stringLiterals(text).map((s) => `${s.line}:${s.value}`),
      ['1:semantic-avif', '2:learned', '3:jpeg', '3:http://x//y'],
    );
    assert.deepEqual(offences('x.ts', text), ["x.ts:1: 'semantic-avif'", "x.ts:2: 'learned'", "x.ts:3: 'jpeg'"]);
    assert.deepEqual(offences('y.ts', "const formats = ['png', 'jpeg', 'avif'];"), [], 'file formats stay file formats');
  });

  it('names no kind outside src/codec/kinds/', () => {
    const files = sources().filter((f) => !f.startsWith(KINDS_DIR + path.sep));
    assert.ok(files.length > 50, 'every source is read');
    assert.deepEqual(
      files.flatMap((f) => offences(path.relative(ROOT, f), readFileSync(f, 'utf8'))),
      [],
    );
  });

  it('has one kind per container code, each name once', () => {
    const codes = Object.values(CodecKind).filter((v): v is number => typeof v === 'number');
    assert.deepEqual(KINDS.map((k) => k.code).sort(), [...codes].sort());
    for (const field of ['name', 'harnessName'] as const) {
      assert.equal(new Set(KINDS.map((k) => k[field])).size, KINDS.length, `${field}s are unique`);
    }
  });

  it('has scales whose default and ladder lie inside them, the ladder rising', () => {
    for (const k of KINDS) {
      const s = k.scale({ levels: 8, default: 4 });
      const inside = (q: number) => q >= s.min && q <= s.max && (!s.integer || Number.isInteger(q));
      assert.ok(inside(s.default) && inside(s.budgetStart), k.name);
      assert.ok(s.ladder.length >= 2 && s.ladder.every(inside), `${k.name} ladder ${s.ladder.join(',')}`);
      assert.ok(
        s.ladder.every((q, i) => i === 0 || q > s.ladder[i - 1]!),
        `${k.name} ladder rises`,
      );
      assert.ok(s.budgetStep > 0 && s.logSlope > 0);
    }
  });

  it('steps along the settings the evaluation harness measures (eval/vlmpress_eval/codecs.py)', () => {
    const py = readFileSync(path.join(ROOT, 'eval', 'vlmpress_eval', 'codecs.py'), 'utf8');
    const list = (s: string) => s.split(',').map((x) => Number(x.trim()));
    const constants = new Map([...py.matchAll(/^([A-Z_]+) = \[([\d., ]+)\]/gm)].map((m) => [m[1]!, list(m[2]!)]));
    const learnedDefault = list(/self\.settings = settings or \[([\d., ]+)\]/.exec(py)![1]!);
    const measured = new Map<string, number[]>();
    for (const m of py.matchAll(/"([\w-]+)": VlmpressCodec\(([^)]*)\)/g)) {
      const settings = /settings=(\[[\d., ]+\]|[A-Z_]+)/.exec(m[2]!)?.[1];
      measured.set(
        m[1]!,
        settings === undefined ? learnedDefault : settings.startsWith('[') ? list(settings.slice(1, -1)) : constants.get(settings)!,
      );
    }
    for (const k of KINDS) {
      assert.ok(measured.has(k.harnessName), `the harness measures ${k.harnessName}`);
      assert.deepEqual([...k.scale({ levels: 8, default: 4 }).ladder], measured.get(k.harnessName), k.name);
    }
  });
});
