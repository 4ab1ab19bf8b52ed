/** webp: WebP from sharp (libwebp, lossy). */
import { CodecKind } from '../container.js';
import type { RgbImage } from '../image-io.js';
import { bytesOf, fileScale, plainFileKind, sharpRgb } from './file-payload.js';
import { KIND_NAMES } from './names.js';

async function webpFile(img: RgbImage, quality: number): Promise<Uint8Array> {
  return bytesOf(await sharpRgb(img).webp({ quality, effort: 4 }).toBuffer());
}

/** The harness's settings; bytes grow about 2 % a quality point on Kodak. */
const WEBP_SCALE = fileScale([2, 10, 25, 40, 55, 70, 85, 95], 0.02);

export const webp = plainFileKind(KIND_NAMES.webp, CodecKind.Webp, 'webp', WEBP_SCALE, webpFile);
