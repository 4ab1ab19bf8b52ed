/**
 * Classical codecs inside the VLMP container, for content where the measured curves show one
 * beating the learned codec (the policy decides; see docs/evaluation.md). The latent section holds
 * the whole AVIF, WebP or JPEG file made by sharp; the header keeps size and quality, the CRC
 * covers it all, so storage, retrieval and decoding treat every bitstream alike.
 */
import sharp from 'sharp';
import { CodecKind, Flags, NO_MODEL, parseContainer, QUALITY_ONE, serialiseContainer, type Container } from './container.js';
import { CodecError } from './errors.js';
import { encodeAvifScreen } from './avifenc.js';
import { decodeImage, type RgbImage } from './image-io.js';

/** `avif-screen`: AVIF from avifenc with libaom's screen-content tools, for rendered text (avifenc.ts). */
export const CLASSICAL_CODECS = ['avif', 'webp', 'jpeg', 'avif-screen'] as const;
export type ClassicalCodec = (typeof CLASSICAL_CODECS)[number];
/** The standard file formats a classical bitstream's latent section holds. */
export type PayloadFormat = 'avif' | 'webp' | 'jpeg';
export const CLASSICAL_KIND: Record<ClassicalCodec, CodecKind> = {
  avif: CodecKind.Avif,
  webp: CodecKind.Webp,
  jpeg: CodecKind.Jpeg,
  'avif-screen': CodecKind.AvifScreen,
};
const FORMAT_OF: Record<ClassicalCodec, PayloadFormat> = { avif: 'avif', webp: 'webp', jpeg: 'jpeg', 'avif-screen': 'avif' };
const NAME_OF_KIND = new Map<CodecKind, ClassicalCodec>(CLASSICAL_CODECS.map((c) => [CLASSICAL_KIND[c], c]));

export function classicalName(kind: CodecKind): ClassicalCodec | undefined {
  return NAME_OF_KIND.get(kind);
}

/** The file format a codec choice stores (semantic AVIF stores AVIF); undefined for the learned codec. */
export function codecPayloadFormat(codec: string): PayloadFormat | undefined {
  if (codec === 'semantic-avif') return 'avif';
  return (CLASSICAL_CODECS as readonly string[]).includes(codec) ? FORMAT_OF[codec as ClassicalCodec] : undefined;
}

/** The codec a bitstream was made with, by the name requests and answers use. */
export function bitstreamCodec(bitstream: Uint8Array): 'learned' | ClassicalCodec | 'semantic-avif' {
  const kind = parseContainer(bitstream).codec;
  return kind === CodecKind.SemanticAvif ? 'semantic-avif' : (classicalName(kind) ?? 'learned');
}

/** The file format of a bitstream's latent section when it is a standard image file (AVIF for semantic AVIF). */
export function payloadFormat(kind: CodecKind): PayloadFormat | undefined {
  if (kind === CodecKind.SemanticAvif) return 'avif';
  const name = classicalName(kind);
  return name && FORMAT_OF[name];
}

/**
 * The AVIF, WebP or JPEG file inside a bitstream, exactly as sharp made it (framing and CRC checked),
 * when that file is the reconstruction itself: a backend that reads the format can take it as is.
 * Null for the learned codec and for semantic AVIF that is decoded through a restoration network.
 */
export function classicalPayload(bitstream: Uint8Array): { codec: PayloadFormat; file: Uint8Array; width: number; height: number } | null {
  const c = parseContainer(bitstream);
  const codec = payloadFormat(c.codec);
  if (!codec || c.flags & Flags.Restoration) return null;
  return { codec, file: c.latent, width: c.width, height: c.height };
}

/**
 * Effort 3 (libvips passes libaom speed 9 - effort = 6, the speed of the Pillow AVIF anchor), not
 * sharp's default 4: `bench/avif-effort.ts` measured it 4.3-4.7x faster (180 -> 42 ms for a 224²
 * photo, 630 -> 135 ms at 512 px, on one core) for 2.6-3.7 % more bytes at equal PSNR. At effort 4
 * an Anthropic-sized image (1.15 MP) would take seconds per request.
 */
const AVIF_EFFORT = 3;

/** External tools a classical codec may run (from the gateway's configuration). */
export interface ClassicalTools {
  /** the avifenc command for avif-screen (default: avifenc on the PATH) */
  avifenc?: string;
}

async function fileAt(img: RgbImage, codec: ClassicalCodec, quality: number, tools: ClassicalTools): Promise<Uint8Array> {
  if (codec === 'avif-screen') return encodeAvifScreen(img, quality, tools.avifenc);
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  const out =
    codec === 'avif'
      ? await s.avif({ quality, effort: AVIF_EFFORT, chromaSubsampling: '4:2:0' }).toBuffer()
      : codec === 'webp'
        ? await s.webp({ quality, effort: 4 }).toBuffer()
        : await s.jpeg({ quality, chromaSubsampling: '4:2:0' }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.length);
}

export function checkClassicalQuality(codec: string, quality: number): void {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100)
    throw new CodecError('invalid_argument', `${codec} quality must be an integer from 1 to 100`, { quality });
}

/** `wrap` overrides the container's codec byte and model id (semantic AVIF names its editor package). */
export async function encodeClassical(
  img: RgbImage,
  codec: ClassicalCodec,
  quality: number,
  flags: number,
  wrap: { kind: CodecKind; modelIdPrefix: string } = { kind: CLASSICAL_KIND[codec], modelIdPrefix: NO_MODEL },
  tools: ClassicalTools = {},
): Promise<Uint8Array> {
  checkClassicalQuality(codec, quality);
  return serialiseContainer({
    version: 1,
    codec: wrap.kind,
    flags,
    modelIdPrefix: wrap.modelIdPrefix,
    qualityFixed: quality * QUALITY_ONE,
    width: img.width,
    height: img.height,
    hyper: new Uint8Array(0),
    latent: await fileAt(img, codec, quality, tools),
  });
}

/**
 * The highest integer quality up to `maxQuality` whose bitstream fits `maxBytes` (bisection: sizes
 * grow with quality). `at` encodes at one quality (for semantic AVIF the edit depends on it too).
 */
export async function encodeClassicalWithin(
  at: (quality: number) => Promise<Uint8Array>,
  codec: string,
  maxQuality: number,
  maxBytes: number,
): Promise<{ bitstream: Uint8Array; quality: number; probes: number }> {
  let probes = 1;
  const top = await at(maxQuality);
  if (top.length <= maxBytes) return { bitstream: top, quality: maxQuality, probes };
  let lo = 0; // quality known to fit (0: none yet)
  let best: Uint8Array | undefined;
  let hi = maxQuality; // quality known not to fit
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const b = await at(Math.max(1, mid));
    probes++;
    if (b.length <= maxBytes) {
      lo = mid;
      best = b;
    } else hi = mid;
  }
  if (!best) throw new CodecError('budget_too_small', `even ${codec} quality 1 needs more than ${maxBytes} bytes`, { maxBytes });
  return { bitstream: best, quality: lo, probes };
}

export async function decodeClassical(c: Container, maxPixels: number): Promise<RgbImage & { quality: number }> {
  const codec = payloadFormat(c.codec)!;
  if (c.width * c.height > maxPixels)
    throw new CodecError('image_too_large', `the bitstream announces ${c.width}x${c.height} pixels, the limit is ${maxPixels}`);
  let img;
  try {
    img = await decodeImage(c.latent, maxPixels);
  } catch (e) {
    throw new CodecError('corrupt_payload', `the ${codec} payload does not decode (${(e as Error).message})`);
  }
  if (img.format !== codec || img.width !== c.width || img.height !== c.height) {
    throw new CodecError(
      'corrupt_payload',
      `the payload is ${img.format} ${img.width}x${img.height}, the header says ${codec} ${c.width}x${c.height}`,
    );
  }
  return { data: img.data, width: img.width, height: img.height, quality: c.qualityFixed / QUALITY_ONE };
}
