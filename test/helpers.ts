/** Shared test helpers: paths, the loaded codec, image sources from ../shared, and small utilities. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { Codec, type CodecOptions, type RgbImage } from '../src/codec/index.js';

function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
}

export const ROOT = projectRoot();
/** Development data beside the project (tests and benchmarks only; the product never reads it). */
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const CLI = path.join(ROOT, 'bin', 'vlmpress.js');

export function sharedFile(...parts: string[]): string {
  const p = path.join(SHARED, ...parts);
  if (!existsSync(p)) throw new Error(`test data missing: ${p} (the tests need ../shared beside the project)`);
  return p;
}

export function readShared(...parts: string[]): Buffer {
  return readFileSync(sharedFile(...parts));
}

const codecs = new Map<string, Promise<Codec>>();
/** One codec per distinct option set per test process: sessions are expensive to create. */
export function sharedCodec(options: CodecOptions = {}): Promise<Codec> {
  const key = JSON.stringify(options);
  if (!codecs.has(key)) codecs.set(key, Codec.load(options));
  return codecs.get(key)!;
}

export async function closeCodecs(): Promise<void> {
  for (const c of codecs.values()) await (await c).close();
  codecs.clear();
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A crop of a shared image as packed RGB. */
export async function rgbCrop(file: string, left: number, top: number, width: number, height: number): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().extract({ left, top, width, height }).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

export async function rgbOf(file: string, size?: number): Promise<RgbImage> {
  let s = sharp(file).removeAlpha().toColourspace('srgb');
  if (size) s = s.resize(size, size, { fit: 'cover' });
  const { data, info } = await s.raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** The largest per-sample difference of two images of one size, and how many samples differ at all. */
export function levelDifference(a: RgbImage, b: RgbImage): { worst: number; differing: number } {
  let worst = 0;
  let differing = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    worst = Math.max(worst, d);
    if (d) differing++;
  }
  return { worst, differing };
}

export function psnr(a: RgbImage, b: RgbImage): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    se += d * d;
  }
  const mse = se / a.data.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Deterministic PRNG (mulberry32) so fuzz cases are reproducible from their seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
