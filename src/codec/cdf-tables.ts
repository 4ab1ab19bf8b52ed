/**
 * The integer CDF tables of a model package (`entropy_tables.json`, docs/model-format.md). They are data
 * computed once at export; the runtime validates them and never recomputes them, so the tables cannot
 * differ between machines.
 */
import { CodecError } from './errors.js';

export interface CdfTable {
  /** value coded by index 0; value v has index v - offset */
  readonly offset: number;
  /** symbol frequencies, the last one is the escape symbol; they sum to 2^precision */
  readonly freq: Uint32Array;
  /** prefix sums of freq, length freq.length + 1, cum[0] = 0, cum[n] = 2^precision */
  readonly cum: Uint32Array;
  /** index of the escape symbol (freq.length - 1) */
  readonly escape: number;
}

export interface EntropyTables {
  readonly precision: number;
  readonly hyper: readonly CdfTable[];
  readonly gaussian: readonly CdfTable[];
  readonly gaussianScales: readonly number[];
}

const MAX_SYMBOLS = 1 << 12;

function bad(message: string): never {
  throw new CodecError('bad_model_package', `entropy tables: ${message}`);
}

function parseTable(raw: unknown, precision: number, where: string): CdfTable {
  if (typeof raw !== 'object' || raw === null) bad(`${where} is not an object`);
  const { offset, freq } = raw as { offset?: unknown; freq?: unknown };
  if (!Number.isSafeInteger(offset)) bad(`${where}.offset is not an integer`);
  if (!Array.isArray(freq) || freq.length < 2 || freq.length > MAX_SYMBOLS) bad(`${where}.freq must have 2..${MAX_SYMBOLS} entries`);
  const f = new Uint32Array(freq.length);
  const cum = new Uint32Array(freq.length + 1);
  for (let i = 0; i < freq.length; i++) {
    const v = freq[i];
    if (!Number.isInteger(v) || (v as number) < 1) bad(`${where}.freq[${i}] must be an integer >= 1`);
    f[i] = v as number;
    cum[i + 1] = cum[i]! + (v as number);
  }
  if (cum[freq.length] !== 2 ** precision) bad(`${where}.freq sums to ${cum[freq.length]}, not 2^${precision}`);
  return { offset: offset as number, freq: f, cum, escape: freq.length - 1 };
}

export function parseEntropyTables(json: unknown, expect: { hyperChannels: number; gaussianScales: number }): EntropyTables {
  if (typeof json !== 'object' || json === null) bad('not an object');
  const t = json as Record<string, unknown>;
  const precision = t['precision'];
  // 16 bits is what the rANS coder's 32-bit state with byte-wise renormalisation is built for.
  if (precision !== 16) bad(`precision ${String(precision)} is not supported (16)`);
  const hyperRaw = t['hyper'];
  if (!Array.isArray(hyperRaw) || hyperRaw.length !== expect.hyperChannels) bad(`hyper must list ${expect.hyperChannels} tables`);
  const g = t['gaussian'] as { scales?: unknown; tables?: unknown } | undefined;
  if (
    !g ||
    !Array.isArray(g.tables) ||
    !Array.isArray(g.scales) ||
    g.tables.length !== expect.gaussianScales ||
    g.scales.length !== g.tables.length
  ) {
    bad(`gaussian must list ${expect.gaussianScales} scales and tables`);
  }
  return {
    precision,
    hyper: hyperRaw.map((r, i) => parseTable(r, precision, `hyper[${i}]`)),
    gaussian: (g.tables as unknown[]).map((r, i) => parseTable(r, precision, `gaussian.tables[${i}]`)),
    gaussianScales: (g.scales as unknown[]).map(Number),
  };
}
