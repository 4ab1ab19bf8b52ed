/**
 * Fuzz case generation for bitstreams and images, shared by the test suite (a few thousand cases)
 * and bench/fuzz (100,000). Every case is reproducible from (seed, index). The property: decoding
 * a case either succeeds or throws a CodecError; never another exception, a hang or a huge allocation.
 */
import { writeLeb128 } from '../../src/codec/container.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { rng } from '../helpers.js';

export type BitstreamMutation =
  'flip' | 'set' | 'truncate' | 'append' | 'splice' | 'random' | 'magic-random' | 'payload-crc-fixed' | 'header-crc-fixed';
export const BITSTREAM_MUTATIONS: BitstreamMutation[] = [
  'flip',
  'set',
  'truncate',
  'append',
  'splice',
  'random',
  'magic-random',
  'payload-crc-fixed',
  'header-crc-fixed',
];
export type ImageMutation = 'flip' | 'set' | 'truncate' | 'splice';
export const IMAGE_MUTATIONS: ImageMutation[] = ['flip', 'set', 'truncate', 'splice'];

function fixCrc(b: Uint8Array): Uint8Array {
  if (b.length >= 8) new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(b.length - 4, crc32c(b, 0, b.length - 4), false);
  return b;
}

function flipBits(rand: () => number, b: Uint8Array, from = 0, to = b.length): void {
  const n = 1 + Math.floor(rand() * 8);
  for (let i = 0; i < n && to > from; i++) b[from + Math.floor(rand() * (to - from))]! ^= 1 << Math.floor(rand() * 8);
}

function randomBytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

function mutateCommon(rand: () => number, seed: Uint8Array, kind: 'flip' | 'set' | 'truncate' | 'append' | 'splice'): Uint8Array {
  const b = Uint8Array.from(seed);
  switch (kind) {
    case 'flip':
      flipBits(rand, b);
      return b;
    case 'set':
      for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++)
        b[Math.floor(rand() * b.length)] = [0, 0xff, 0x80, 0x7f][Math.floor(rand() * 4)]!;
      return b;
    case 'truncate':
      return b.subarray(0, Math.floor(rand() * b.length));
    case 'append':
      return new Uint8Array([...b, ...randomBytes(rand, 1 + Math.floor(rand() * 64))]);
    case 'splice': {
      const at = Math.floor(rand() * b.length);
      const del = Math.floor(rand() * 16);
      return new Uint8Array([
        ...b.subarray(0, at),
        ...randomBytes(rand, Math.floor(rand() * 16)),
        ...b.subarray(Math.min(b.length, at + del)),
      ]);
    }
  }
}

/** Header length of a valid VLMP v1 stream (fixed part plus four LEB128 fields). */
function headerLength(b: Uint8Array): number {
  let pos = 17;
  for (let f = 0; f < 4; f++) while (pos < b.length && (b[pos++]! & 0x80) !== 0);
  return pos;
}

export function bitstreamCase(seeds: Uint8Array[], seed: number, index: number): { kind: BitstreamMutation; data: Uint8Array } {
  const rand = rng(seed * 1_000_003 + index);
  const kind = BITSTREAM_MUTATIONS[index % BITSTREAM_MUTATIONS.length]!;
  const base = seeds[Math.floor(rand() * seeds.length)]!;
  switch (kind) {
    case 'random':
      return { kind, data: randomBytes(rand, Math.floor(rand() * 256)) };
    case 'magic-random':
      return {
        kind,
        data: fixCrc(
          new Uint8Array([0x56, 0x4c, 0x4d, 0x50, 1, 0, 0, ...base.subarray(7, 17), ...randomBytes(rand, Math.floor(rand() * 200))]),
        ),
      };
    case 'payload-crc-fixed': {
      const b = Uint8Array.from(base);
      flipBits(rand, b, headerLength(b), b.length - 4);
      return { kind, data: fixCrc(b) };
    }
    case 'header-crc-fixed': {
      const b = Uint8Array.from(base);
      const h = headerLength(b);
      // Rewrite width/height with large or zero values, or flip header bits, keeping the CRC valid.
      if (rand() < 0.5) {
        const dims = [0, 1, 16, 1000, 7000, 2 ** 24, 2 ** 28][Math.floor(rand() * 7)]!;
        const leb: number[] = [];
        writeLeb128(leb, dims);
        let pos = 17;
        while (b[pos]! & 0x80) pos++;
        const rest = b.subarray(pos + 1);
        const out = new Uint8Array([...b.subarray(0, 17), ...leb, ...rest]);
        return { kind, data: fixCrc(out) };
      }
      flipBits(rand, b, 4, h);
      return { kind, data: fixCrc(b) };
    }
    default:
      return { kind, data: mutateCommon(rand, base, kind) };
  }
}

export function imageCase(seeds: Uint8Array[], seed: number, index: number): { kind: ImageMutation; data: Uint8Array } {
  const rand = rng(seed * 1_000_033 + index);
  const kind = IMAGE_MUTATIONS[index % IMAGE_MUTATIONS.length]!;
  const base = seeds[Math.floor(rand() * seeds.length)]!;
  return { kind, data: mutateCommon(rand, base, kind) };
}
