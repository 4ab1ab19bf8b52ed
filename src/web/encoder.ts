/**
 * The browser (and edge) encoder: makes, on the client, the VLMP bitstream the gateway would make, so
 * the uplink carries the compact bitstream instead of the photo. The AV1 core is libaom through
 * libavif compiled to WebAssembly (@jsquash/avif); the container is the codec's own code
 * (src/codec/container.ts), so framing, header and checksum are byte for byte the gateway's.
 *
 * How close it is to the gateway's encode (docs/inspector.md, measured by bench/browser.ts): the
 * container, the decoder path and the header's quality are the same; the AV1 payload is not
 * byte-identical (another libaom build, libavif's rate mapping instead of libheif's), so the browser
 * maps the gateway's quality to the libavif quality of equal distortion (LIBAVIF_QUALITY below).
 * The pre-editor of an editor package, when it has one, does not run here yet: the stream is then
 * semantic AVIF without the edit (the decoder needs nothing from it).
 *
 * Runs wherever ES modules, WebAssembly and OffscreenCanvas or ImageData exist; `@jsquash/avif`
 * must resolve (an import map in a page, a bundler elsewhere).
 */
import encodeAvif from '@jsquash/avif/encode.js';
import { CodecKind, Flags, NO_MODEL, QUALITY_ONE, serialiseContainer } from '../codec/container.js';
import { KIND_NAMES } from '../codec/kinds/names.js';

/** RGBA pixels, as ImageData holds them. */
export interface Pixels {
  data: Uint8ClampedArray<ArrayBuffer>;
  width: number;
  height: number;
}

/** What a client needs of the gateway's editor package (GET /policy, POST /policy/decision). */
export interface EditorInfo {
  name?: string;
  id: string;
  preeditor: boolean;
  restoration: boolean;
}

/** The codecs the browser makes: the AV1 ones (the policy's choices for photos). */
export const BROWSER_CODECS = [KIND_NAMES.avif, KIND_NAMES.semanticAvif] as const;
export type BrowserCodec = (typeof BROWSER_CODECS)[number];

export interface BrowserEncodeSettings {
  codec: BrowserCodec;
  /** on the gateway's scale (sharp's AVIF quality, 1..100): the header carries it, restoration reads it */
  quality: number;
  /** semantic AVIF: the editor package the stream names */
  editor?: EditorInfo | null;
  /** the highest quality up to `quality` whose bitstream fits */
  maxBytes?: number;
}

export interface BrowserEncodeResult {
  bitstream: Uint8Array;
  /** the quality used (below the requested one when a byte budget needed it) */
  quality: number;
  alphaFlattened: boolean;
  /** semantic AVIF: whether the package's pre-editor ran (never, in this version) */
  preedited: boolean;
  probes: number;
  encodeMs: number;
}

export class BrowserEncodeError extends Error {
  constructor(
    readonly code: 'unsupported_codec' | 'invalid_argument' | 'budget_too_small' | 'bad_image',
    message: string,
  ) {
    super(message);
    this.name = 'BrowserEncodeError';
  }
}

/**
 * The libavif quality whose mean PSNR matches the gateway's AVIF quality (sharp, libheif's mapping),
 * measured on Kodak by `node dist/bench/browser.js --calibrate` (mean PSNR of 10 photos at each quality):
 * at equal quality numbers libavif quantises finer. Linear between the measured points.
 */
export const LIBAVIF_QUALITY: readonly (readonly [number, number])[] = [
  [1, 1],
  [15, 16],
  [30, 28],
  [45, 42],
  [55, 51],
  [70, 68],
  [85, 83],
  [100, 100],
];

export function libavifQuality(gatewayQuality: number): number {
  const table = LIBAVIF_QUALITY;
  for (let i = 1; i < table.length; i++) {
    const [q0, l0] = table[i - 1]!;
    const [q1, l1] = table[i]!;
    if (gatewayQuality <= q1) return Math.round(l0 + ((l1 - l0) * (gatewayQuality - q0)) / (q1 - q0));
  }
  return table[table.length - 1]![1];
}

/** Alpha composited onto white, as the gateway flattens it; reports whether there was any. */
export function flattenOnWhite(p: Pixels): { pixels: Pixels; hadAlpha: boolean } {
  const src = p.data;
  let hadAlpha = false;
  for (let i = 3; i < src.length; i += 4) {
    if (src[i] !== 255) {
      hadAlpha = true;
      break;
    }
  }
  if (!hadAlpha) return { pixels: p, hadAlpha };
  const out = new Uint8ClampedArray(src.length);
  for (let i = 0; i < src.length; i += 4) {
    const a = src[i + 3]! / 255;
    out[i] = Math.round(src[i]! * a + 255 * (1 - a));
    out[i + 1] = Math.round(src[i + 1]! * a + 255 * (1 - a));
    out[i + 2] = Math.round(src[i + 2]! * a + 255 * (1 - a));
    out[i + 3] = 255;
  }
  return { pixels: { data: out, width: p.width, height: p.height }, hadAlpha };
}

/** One VLMP bitstream from RGBA pixels (already at the size the policy decided). */
export async function encodeBitstream(pixels: Pixels, settings: BrowserEncodeSettings): Promise<BrowserEncodeResult> {
  const t0 = performance.now();
  const { codec, quality } = settings;
  if (!(BROWSER_CODECS as readonly string[]).includes(codec))
    throw new BrowserEncodeError('unsupported_codec', `the browser encodes ${BROWSER_CODECS.join(' and ')}, not ${codec}`);
  if (!Number.isInteger(quality) || quality < 1 || quality > 100)
    throw new BrowserEncodeError('invalid_argument', `${codec} quality must be an integer from 1 to 100`);
  if (pixels.width < 1 || pixels.height < 1 || pixels.data.length !== pixels.width * pixels.height * 4)
    throw new BrowserEncodeError('invalid_argument', 'pixels must be RGBA of width x height x 4 bytes');
  const semantic = codec === KIND_NAMES.semanticAvif;
  const editor = settings.editor;
  if (semantic && !editor) throw new BrowserEncodeError('invalid_argument', 'semantic AVIF needs the editor package (GET /policy: editor)');
  const { pixels: opaque, hadAlpha } = flattenOnWhite(pixels);
  const flags = (hadAlpha ? Flags.AlphaFlattened : 0) | (semantic && editor!.restoration ? Flags.Restoration : 0);
  const at = async (q: number): Promise<Uint8Array> => {
    const avif = await encodeAvif(
      { data: opaque.data, width: opaque.width, height: opaque.height, colorSpace: 'srgb' },
      // speed 6 and 4:2:0: the gateway's AVIF settings (sharp effort 3 is libaom speed 6)
      { quality: libavifQuality(q), speed: 6, subsample: 1 },
    );
    return serialiseContainer({
      version: 1,
      codec: semantic ? CodecKind.SemanticAvif : CodecKind.Avif,
      flags,
      modelIdPrefix: semantic ? editor!.id.slice(0, 16) : NO_MODEL,
      qualityFixed: q * QUALITY_ONE,
      width: opaque.width,
      height: opaque.height,
      hyper: new Uint8Array(0),
      latent: new Uint8Array(avif),
    });
  };
  const done = (bitstream: Uint8Array, q: number, probes: number): BrowserEncodeResult => ({
    bitstream,
    quality: q,
    alphaFlattened: hadAlpha,
    preedited: false,
    probes,
    encodeMs: performance.now() - t0,
  });
  const top = await at(quality);
  if (settings.maxBytes === undefined || top.length <= settings.maxBytes) return done(top, quality, 1);
  // Bisection, as the gateway does it: sizes grow with quality.
  let lo = 0;
  let hi = quality;
  let best: Uint8Array | undefined;
  let probes = 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const b = await at(Math.max(1, mid));
    probes++;
    if (b.length <= settings.maxBytes) {
      lo = mid;
      best = b;
    } else hi = mid;
  }
  if (!best) throw new BrowserEncodeError('budget_too_small', `even ${codec} quality 1 needs more than ${settings.maxBytes} bytes`);
  return done(best, lo, probes);
}

/** An image file decoded by the browser (EXIF orientation applied, alpha not premultiplied). */
export async function decodeImage(file: Blob): Promise<ImageBitmap> {
  try {
    return await createImageBitmap(file, { colorSpaceConversion: 'default', premultiplyAlpha: 'none' });
  } catch {
    throw new BrowserEncodeError('bad_image', 'the file is not an image this browser can decode');
  }
}

/** The RGBA pixels of a decoded image, downscaled to `size` when given (the browser's high-quality resampling). */
export function bitmapPixels(bitmap: ImageBitmap, size?: { width: number; height: number }): Pixels {
  const width = size?.width ?? bitmap.width;
  const height = size?.height ?? bitmap.height;
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext('2d', { willReadFrequently: true });
  if (!g) throw new BrowserEncodeError('bad_image', 'no 2D canvas in this browser');
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = 'high';
  g.drawImage(bitmap, 0, 0, width, height);
  return { data: g.getImageData(0, 0, width, height).data, width, height };
}

/** A gateway to talk to: its base URL ('' for the page's own origin) and API key, if it needs one. */
export interface Gateway {
  baseUrl: string;
  apiKey?: string;
}

/** A gateway error answer, as `{error: {code, message}}` says it. */
export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'GatewayError';
  }
}

export async function callGateway<T>(gw: Gateway, path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  if (gw.apiKey) headers.set('authorization', `Bearer ${gw.apiKey}`);
  const res = await fetch(`${gw.baseUrl}${path}`, { ...init, headers });
  if (!res.ok) {
    const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
    throw new GatewayError(res.status, body?.error?.code ?? `http_${res.status}`, body?.error?.message ?? res.statusText);
  }
  return (await res.json()) as T;
}

/** POST /policy/decision's answer. */
export interface Decision {
  policy: { codec: string; quality: number; maxBytes?: number; reason: string; taskClass: string; target: string | null; source: string };
  size: { width: number; height: number };
  tokens: { profile: string; original: number | null; encoded: number | null };
  editor: EditorInfo | null;
}

/** POST /bitstreams's answer. */
export interface Stored {
  id: string;
  bytes: number;
  bpp: number;
  codec: string;
  quality: number;
  width: number;
  height: number;
  /** what the proxy sends the backend for this bitstream: a copy of its reconstruction */
  upstream: { what: string; format: string; bytes: number; width: number; height: number };
}

export interface BrowserCompressResult {
  /** the image's own size, before the decision's downscale */
  original: { width: number; height: number };
  decision: Decision;
  encoded: BrowserEncodeResult;
  stored: Stored;
}

/**
 * The whole client path: the gateway's decision for this image's size and the request fields
 * (`task`, `target`, `profile`, `codec`+`quality`, ...), the pixels at the decided size, the
 * bitstream, and POST /bitstreams (which decodes it before storing it).
 */
export async function compressInBrowser(gw: Gateway, file: Blob, fields: Record<string, unknown> = {}): Promise<BrowserCompressResult> {
  // Decoded once: its size asks for the decision, its pixels are then drawn at the decided size.
  const bitmap = await decodeImage(file);
  let pixels: Pixels;
  let decision: Decision;
  const size = { width: bitmap.width, height: bitmap.height };
  try {
    decision = await callGateway<Decision>(gw, '/policy/decision', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...fields, ...size }),
    });
    if (!(BROWSER_CODECS as readonly string[]).includes(decision.policy.codec))
      throw new BrowserEncodeError(
        'unsupported_codec',
        `the policy chose ${decision.policy.codec}, which the browser does not encode (${BROWSER_CODECS.join(', ')}): compress on the gateway`,
      );
    pixels = bitmapPixels(bitmap, decision.size);
  } finally {
    bitmap.close();
  }
  const { policy } = decision;
  const encoded = await encodeBitstream(pixels, {
    codec: policy.codec as BrowserCodec,
    quality: policy.quality,
    editor: decision.editor,
    ...(policy.maxBytes !== undefined ? { maxBytes: policy.maxBytes } : {}),
  });
  const stored = await callGateway<Stored>(gw, '/bitstreams', {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.vlmpress' },
    body: encoded.bitstream as Uint8Array<ArrayBuffer>,
  });
  return { original: size, decision, encoded, stored };
}

/** A bitstream as the image URL the proxy accepts in chat requests (it decodes, never re-encodes it). */
export function bitstreamDataUrl(bitstream: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bitstream.length; i += 0x8000) binary += String.fromCharCode(...bitstream.subarray(i, i + 0x8000));
  return `data:application/vnd.vlmpress;base64,${btoa(binary)}`;
}
