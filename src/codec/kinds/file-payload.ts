/**
 * What the kinds that store a standard image file share: the file goes whole into the container's
 * latent section, the header keeps size and quality, the CRC covers it all; decoding checks that the
 * file is what the header says.
 */
import sharp from 'sharp';
import { NO_MODEL, QUALITY_ONE, serialiseContainer, type CodecKind, type Container } from '../container.js';
import { CodecError } from '../errors.js';
import { decodeImage, type RgbImage } from '../image-io.js';
import type { CodecKindModule, CodecTools, QualityScale } from './kind.js';
import type { CodecChoice, PayloadFormat } from './names.js';

/** The 1..100 integer scale of sharp's encoders (and avifenc's), with the harness's settings as its ladder. */
export function fileScale(ladder: readonly number[], logSlope: number): QualityScale {
  return { min: 1, max: 100, default: 75, budgetStart: 75, integer: true, ladder, budgetStep: 1, logSlope };
}

/** sharp's input for packed RGB pixels. */
export function sharpRgb(img: RgbImage): ReturnType<typeof sharp> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
}

export function bytesOf(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** A file in a container: `modelIdPrefix` names an editor package for the kinds made around one. */
export function wrapFile(
  img: { width: number; height: number },
  file: Uint8Array,
  header: { code: CodecKind; qualityFixed: number; flags: number; modelIdPrefix?: string },
): Uint8Array {
  return serialiseContainer({
    version: 1,
    codec: header.code,
    flags: header.flags,
    modelIdPrefix: header.modelIdPrefix ?? NO_MODEL,
    qualityFixed: header.qualityFixed,
    width: img.width,
    height: img.height,
    hyper: new Uint8Array(0),
    latent: file,
  });
}

/** The file of a bitstream, decoded; a file of another format or size than the header's is corrupt. */
export async function decodeFile(c: Container, format: PayloadFormat, maxPixels: number): Promise<RgbImage & { quality: number }> {
  let img;
  try {
    img = await decodeImage(c.latent, maxPixels);
  } catch (e) {
    throw new CodecError('corrupt_payload', `the ${format} payload does not decode (${(e as Error).message})`);
  }
  if (img.format !== format || img.width !== c.width || img.height !== c.height) {
    throw new CodecError(
      'corrupt_payload',
      `the payload is ${img.format} ${img.width}x${img.height}, the header says ${format} ${c.width}x${c.height}`,
    );
  }
  return { data: img.data, width: img.width, height: img.height, quality: c.qualityFixed / QUALITY_ONE };
}

/**
 * A kind whose bitstream is one file made from the pixels, with no package: AVIF, WebP, JPEG, AVIF
 * screen content. The harness names each `sharp-<name>` (the gateway's encoders, measured as it runs them).
 */
export function plainFileKind(
  name: CodecChoice,
  code: CodecKind,
  payload: PayloadFormat,
  scale: QualityScale,
  file: (img: RgbImage, quality: number, tools: CodecTools) => Promise<Uint8Array>,
): CodecKindModule {
  return {
    name,
    code,
    harnessName: `sharp-${name}`,
    payload,
    scale: () => scale,
    encoder: (ctx, img, { flags }) => ({
      scale,
      at: async (qualityFixed) => wrapFile(img, await file(img, qualityFixed / QUALITY_ONE, ctx.tools), { code, qualityFixed, flags }),
      model: { name, id: '' },
      provider: 'cpu',
    }),
    decode: async (ctx, c) => ({ ...(await decodeFile(c, payload, ctx.maxDecodePixels)), model: { name, id: '' } }),
  };
}
