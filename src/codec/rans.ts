/**
 * rANS entropy coder: 32-bit state, byte-wise renormalisation, 16-bit probability precision
 * (the construction of Duda's asymmetric numeral systems as popularised by ryg_rans).
 * Pure integer arithmetic on JavaScript numbers that never exceed 2^32, so the output is the same
 * on every machine. The only entropy coder in vlmpress.
 *
 * rANS is last-in first-out: the writer records operations in coding order and runs them backwards
 * in `finish()`, so the reader decodes in coding order.
 *
 * Out-of-range values (docs/model-format.md): the table's last symbol is an escape, followed by the
 * value as an order-0 Exp-Golomb code of its zigzag mapping. The Exp-Golomb bits are coded as
 * "bypass" symbols of uniform probability inside the same rANS stream (1..16 bits each, exactly
 * one bit of output per bit of information), so a stream is a single byte string.
 */
import type { CdfTable } from './cdf-tables.js';
import { CodecError } from './errors.js';

const PRECISION = 16;
const RANS_L = 2 ** 23; // lower bound of the normalised state interval [L, 256 L)
const MAX_EG_PREFIX = 31; // zigzag values below 2^32

/** Largest magnitude the latent symbols are clamped to before coding (keeps zigzag below 2^31). */
export const MAX_SYMBOL_MAGNITUDE = 2 ** 30 - 1;

function corrupt(message: string): never {
  throw new CodecError('corrupt_payload', message);
}

export class RansWriter {
  private starts: Uint32Array;
  private freqs: Uint32Array;
  private scaleBits: Uint8Array;
  private count = 0;

  constructor(expectedSymbols = 1024) {
    const cap = Math.max(16, expectedSymbols);
    this.starts = new Uint32Array(cap);
    this.freqs = new Uint32Array(cap);
    this.scaleBits = new Uint8Array(cap);
  }

  private push(start: number, freq: number, bits: number): void {
    if (this.count === this.starts.length) {
      const grow = <T extends Uint32Array | Uint8Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.freqs = grow(this.freqs);
      this.scaleBits = grow(this.scaleBits);
    }
    this.starts[this.count] = start;
    this.freqs[this.count] = freq;
    this.scaleBits[this.count] = bits;
    this.count++;
  }

  /** Code symbol index `idx` of `table`. */
  putSymbol(table: CdfTable, idx: number): void {
    this.push(table.cum[idx]!, table.freq[idx]!, PRECISION);
  }

  /** Code `nbits` (1..16) raw bits at uniform probability. */
  putBits(value: number, nbits: number): void {
    this.push(value, 1, nbits);
  }

  /** Code an integer value with `table`, escaping it when it is outside the table's support. */
  putValue(table: CdfTable, value: number): void {
    const idx = value - table.offset;
    if (idx >= 0 && idx < table.escape) {
      this.putSymbol(table, idx);
      return;
    }
    this.putSymbol(table, table.escape);
    const u = value >= 0 ? 2 * value : -2 * value - 1; // zigzag
    const m = u + 1;
    const n = Math.floor(Math.log2(m));
    for (let i = 0; i < n; i++) this.putBits(0, 1);
    this.putBits(1, 1);
    let rest = m - 2 ** n; // the n bits below the leading one, most significant chunk first
    let remaining = n;
    while (remaining > 0) {
      const take = remaining % 16 || 16;
      remaining -= take;
      const chunk = Math.floor(rest / 2 ** remaining);
      rest -= chunk * 2 ** remaining;
      this.putBits(chunk, take);
    }
  }

  get operations(): number {
    return this.count;
  }

  /** Run the recorded operations backwards and return the stream (final state first). */
  finish(): Uint8Array {
    // Each operation emits at most 2 bytes at 16-bit precision (fewer for bypass bits), plus 4 for the state.
    const buf = new Uint8Array(2 * this.count + 4);
    let pos = buf.length;
    let x = RANS_L;
    for (let i = this.count - 1; i >= 0; i--) {
      const freq = this.freqs[i]!;
      const bits = this.scaleBits[i]!;
      const xMax = 2 ** (31 - bits) * freq;
      while (x >= xMax) {
        buf[--pos] = x & 0xff;
        x = Math.floor(x / 256);
      }
      x = Math.floor(x / freq) * 2 ** bits + (x % freq) + this.starts[i]!;
    }
    buf[--pos] = x & 0xff;
    buf[--pos] = (x >>> 8) & 0xff;
    buf[--pos] = (x >>> 16) & 0xff;
    buf[--pos] = (x >>> 24) & 0xff;
    return buf.subarray(pos);
  }
}

export class RansReader {
  private x: number;
  private pos: number;

  constructor(private readonly buf: Uint8Array) {
    if (buf.length < 4) corrupt('rANS stream shorter than its state');
    this.x = buf[0]! * 2 ** 24 + buf[1]! * 2 ** 16 + buf[2]! * 2 ** 8 + buf[3]!;
    this.pos = 4;
    if (this.x < RANS_L || this.x >= 2 ** 31) corrupt('rANS initial state out of range');
  }

  private renormalise(): void {
    while (this.x < RANS_L) {
      if (this.pos >= this.buf.length) corrupt('rANS stream ended early');
      this.x = this.x * 256 + this.buf[this.pos++]!;
    }
  }

  /** Decode one symbol index of `table`. */
  getSymbol(table: CdfTable): number {
    const slot = this.x & 0xffff;
    const cum = table.cum;
    // Binary search for the last index with cum[idx] <= slot.
    let lo = 0;
    let hi = table.freq.length;
    while (hi - lo > 1) {
      const mid = (lo + hi) >>> 1;
      if (cum[mid]! <= slot) lo = mid;
      else hi = mid;
    }
    this.x = table.freq[lo]! * (this.x >>> PRECISION) + slot - cum[lo]!;
    this.renormalise();
    return lo;
  }

  getBits(nbits: number): number {
    const mask = (1 << nbits) - 1;
    const value = this.x & mask;
    this.x = this.x >>> nbits;
    this.renormalise();
    return value;
  }

  getValue(table: CdfTable): number {
    const idx = this.getSymbol(table);
    if (idx < table.escape) return idx + table.offset;
    let n = 0;
    while (this.getBits(1) === 0) {
      if (++n > MAX_EG_PREFIX) corrupt('escape code longer than 32 bits');
    }
    let m = 1;
    let remaining = n;
    while (remaining > 0) {
      const take = remaining % 16 || 16;
      remaining -= take;
      m = m * 2 ** take + this.getBits(take);
    }
    const u = m - 1;
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }

  /** A stream is complete when every byte was read and the state is back where the writer began. */
  assertFinished(): void {
    if (this.x !== RANS_L || this.pos !== this.buf.length) corrupt('rANS stream did not end cleanly');
  }
}
