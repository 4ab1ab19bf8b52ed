/** avif: AVIF from sharp (libheif over libaom), the policy's choice for photos. */
import { CodecKind } from '../container.js';
import type { RgbImage } from '../image-io.js';
import { bytesOf, fileScale, plainFileKind, sharpRgb } from './file-payload.js';
import { KIND_NAMES } from './names.js';

/**
 * Effort 3 (libvips passes libaom speed 9 - effort = 6, the speed of the Pillow AVIF anchor), not
 * sharp's default 4: `bench/avif-effort.ts` measured it 4.3-4.7x faster (180 -> 42 ms for a 224²
 * photo, 630 -> 135 ms at 512 px, on one core) for 2.6-3.7 % more bytes at equal PSNR. At effort 4
 * an Anthropic-sized image (1.15 MP) would take seconds per request.
 */
const AVIF_EFFORT = 3;

/** The AVIF file of `img` at sharp quality `quality` (semantic AVIF codes its edited image with it too). */
export async function avifFile(img: RgbImage, quality: number): Promise<Uint8Array> {
  return bytesOf(await sharpRgb(img).avif({ quality, effort: AVIF_EFFORT, chromaSubsampling: '4:2:0' }).toBuffer());
}

/** The harness's AVIF settings (eval/vlmpress_eval/codecs.py, AVIF_SETTINGS); bytes grow ~4 % a quality point on Kodak. */
export const AVIF_SCALE = fileScale([5, 15, 25, 35, 45, 55, 70, 85], 0.04);

export const avif = plainFileKind(KIND_NAMES.avif, CodecKind.Avif, 'avif', AVIF_SCALE, avifFile);
