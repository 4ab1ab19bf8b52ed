import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CdfTable } from '../../src/codec/cdf-tables.js';
import { CodecError } from '../../src/codec/errors.js';
import { MAX_SYMBOL_MAGNITUDE, RansReader, RansWriter } from '../../src/codec/rans.js';
import { rng } from '../helpers.js';

/** A valid 16-bit table with random frequencies (>= 1 each) over `n` symbols, escape last. */
function randomTable(rand: () => number, n: number, offset: number): CdfTable {
  const weights = Array.from({ length: n }, () => rand() ** 3);
  const total = weights.reduce((a, b) => a + b, 0);
  const freq = new Uint32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    freq[i] = 1 + Math.floor((weights[i]! / total) * (65536 - n));
    sum += freq[i]!;
  }
  freq[0]! += 65536 - sum;
  const cum = new Uint32Array(n + 1);
  for (let i = 0; i < n; i++) cum[i + 1] = cum[i]! + freq[i]!;
  return { offset, freq, cum, escape: n - 1 };
}

describe('rANS coder', () => {
  it('round-trips random values, escapes and extremes over random tables', () => {
    const rand = rng(1);
    for (let trial = 0; trial < 50; trial++) {
      const tables = Array.from({ length: 4 }, () => randomTable(rand, 2 + Math.floor(rand() * 60), -Math.floor(rand() * 30)));
      const values: [number, number][] = [];
      const w = new RansWriter(16);
      const count = Math.floor(rand() * 3000);
      for (let i = 0; i < count; i++) {
        const t = Math.floor(rand() * tables.length);
        const table = tables[t]!;
        const r = rand();
        let v: number;
        if (r < 0.9) v = table.offset + Math.floor(rand() * table.escape);
        else if (r < 0.98)
          v = Math.round((rand() - 0.5) * 2000) + 0; // + 0: no negative zero
        else v = rand() < 0.5 ? MAX_SYMBOL_MAGNITUDE : -MAX_SYMBOL_MAGNITUDE;
        values.push([t, v]);
        w.putValue(table, v);
      }
      const bytes = w.finish();
      const again = new RansWriter();
      for (const [t, v] of values) again.putValue(tables[t]!, v);
      assert.deepEqual(again.finish(), bytes, 'encoding is deterministic');
      const r = new RansReader(bytes);
      for (const [t, v] of values) assert.equal(r.getValue(tables[t]!), v);
      r.assertFinished();
    }
  });

  it('spends within a few bytes of the ideal code length', () => {
    const rand = rng(2);
    const table = randomTable(rand, 40, -20);
    const w = new RansWriter();
    let idealBits = 0;
    for (let i = 0; i < 200_000; i++) {
      // draw from the table's own distribution
      const u = Math.floor(rand() * 65536);
      let s = 0;
      while (table.cum[s + 1]! <= u) s++;
      if (s === table.escape) s = 0;
      idealBits += 16 - Math.log2(table.freq[s]!);
      w.putSymbol(table, s);
    }
    const bytes = w.finish().length;
    assert.ok(bytes <= Math.ceil(idealBits / 8) + 4 + 0.001 * (idealBits / 8), `${bytes} bytes vs ideal ${(idealBits / 8).toFixed(1)}`);
  });

  it('an empty stream is just the 4-byte state', () => {
    const bytes = new RansWriter().finish();
    assert.equal(bytes.length, 4);
    new RansReader(bytes).assertFinished();
  });

  it('damaged streams decode to other symbols or fail with corrupt_payload, never anything else', () => {
    // rANS has no redundancy of its own (a flipped bit often yields another valid symbol sequence);
    // detecting damage is the container's CRC-32C. The coder's duty is to stay bounded and typed.
    const rand = rng(3);
    const table = randomTable(rand, 20, -10);
    const w = new RansWriter();
    for (let i = 0; i < 500; i++) w.putValue(table, Math.round((rand() - 0.5) * 30));
    const good = w.finish();
    for (const c of [good.subarray(0, 3), Uint8Array.of(0, 0, 0, 0), Uint8Array.of(255, 255, 255, 255)]) {
      assert.throws(
        () => new RansReader(c),
        (e: unknown) => e instanceof CodecError && e.code === 'corrupt_payload',
      );
    }
    for (const c of [good.subarray(0, good.length - 1), new Uint8Array([...good, 7])]) {
      assert.throws(
        () => {
          const r = new RansReader(c);
          for (let i = 0; i < 500; i++) r.getValue(table);
          r.assertFinished();
        },
        (e: unknown) => e instanceof CodecError && e.code === 'corrupt_payload',
      );
    }
    for (let i = 0; i < 500; i++) {
      const bad = Uint8Array.from(good);
      bad[Math.floor(rand() * bad.length)]! ^= 1 << Math.floor(rand() * 8);
      try {
        const r = new RansReader(bad);
        for (let k = 0; k < 500; k++) r.getValue(table);
        r.assertFinished();
      } catch (e) {
        assert.ok(e instanceof CodecError && e.code === 'corrupt_payload', String(e));
      }
    }
  });

  it('bounds escape codes: a run of zero bypass bits longer than 32 is corrupt', () => {
    const table: CdfTable = { offset: 0, freq: Uint32Array.of(65535, 1), cum: Uint32Array.of(0, 65535, 65536), escape: 1 };
    const w = new RansWriter();
    w.putSymbol(table, 1);
    for (let i = 0; i < 40; i++) w.putBits(0, 1);
    const r = new RansReader(w.finish());
    assert.throws(
      () => r.getValue(table),
      (e: unknown) => e instanceof CodecError && e.code === 'corrupt_payload',
    );
  });
});
