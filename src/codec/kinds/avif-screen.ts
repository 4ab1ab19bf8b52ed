/**
 * avif-screen, AVIF for rendered text: libavif's `avifenc` (Debian `libavif-bin`) with libaom's screen-content
 * tools on (`tune-content=screen`: palette and intra block copy) and full-resolution chroma. sharp's
 * AVIF (libheif) exposes neither; on the rendered text pages the harness measured this encoder at
 * -45 % (PP-OCRv4) and -43 % (Tesseract) bytes against sharp AVIF for the same character accuracy
 * (docs/results.md, `text-screen`). The file is a standard AVIF (AV1 High profile for 4:4:4), so
 * decoding stays sharp's. The encoder is a child process: nothing here holds state between images.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CodecKind } from '../container.js';
import { CodecError } from '../errors.js';
import type { RgbImage } from '../image-io.js';
import { AVIF_SCALE } from './avif.js';
import { plainFileKind, sharpRgb } from './file-payload.js';
import { KIND_NAMES } from './names.js';

/** The command that runs avifenc when the options name none (found on the PATH). */
export const DEFAULT_AVIFENC = 'avifenc';
/** libaom speed 6, the speed of sharp's AVIF at effort 3 and of the Pillow anchor. */
const SPEED = 6;
/** An encode never takes this long on an image the gateway accepts; a hung child is killed. */
const TIMEOUT_MS = 120_000;

/** libaom's quantizer (0 lossless .. 63) for a quality 1..100, the mapping libavif uses for its own quality. */
export function quantizerFor(quality: number): number {
  return Math.round(((100 - quality) * 63) / 100);
}

function run(binary: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return reject(
          new CodecError(
            'unsupported_codec',
            `${KIND_NAMES.avifScreen} needs avifenc (apt-get install libavif-bin), not found as "${binary}"`,
          ),
        );
      reject(new Error(`avifenc failed: ${String(stderr).trim().split('\n').slice(-3).join(' ') || err.message}`));
    });
  });
}

export async function encodeAvifScreen(img: RgbImage, quality: number, binary = DEFAULT_AVIFENC): Promise<Uint8Array> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-avifenc-'));
  try {
    const src = path.join(dir, 'in.png');
    const out = path.join(dir, 'out.avif');
    // Uncompressed PNG: the cheapest lossless hand-over avifenc reads (its stdin takes only Y4M).
    await sharpRgb(img).png({ compressionLevel: 0 }).toFile(src);
    const q = String(quantizerFor(quality));
    await run(binary, [
      ...['--speed', String(SPEED), '--jobs', '1', '--yuv', '444', '--min', q, '--max', q],
      ...['--advanced', 'tune-content=screen', src, out],
    ]);
    return new Uint8Array(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether `binary` runs (checked once per process by the caller that needs to know, e.g. the policy). */
export function avifencAvailable(binary = DEFAULT_AVIFENC): Promise<boolean> {
  return new Promise((resolve) => execFile(binary, ['--version'], { timeout: 10_000 }, (err) => resolve(!err)));
}

/** Swept by the harness at sharp AVIF's settings. */
export const avifScreen = plainFileKind(KIND_NAMES.avifScreen, CodecKind.AvifScreen, 'avif', AVIF_SCALE, (img, quality, tools) =>
  encodeAvifScreen(img, quality, tools.avifenc),
);
