/**
 * What /compress and the LVLM proxy share: turn an image reference (base64, data URL, http(s) URL,
 * or an already-compressed vlmpress data URL) into bytes, and `compressImage`: decide, encode and
 * store an image (once per identical image + settings + model), and decode it for forwarding.
 */
import {
  classicalPayload,
  codecPayloadFormat,
  DEFAULT_CODEC,
  imageSize,
  isCodecError,
  looksLikeContainer,
  type PayloadFormat,
  type OutputFormat,
} from '../codec/index.js';
import { imageStats } from '../policy/image-stats.js';
import { decidePolicy, needsImageStats, type PolicyDecision, type PolicyRequest } from '../policy/policy.js';
import { cacheKey, type StoredMeta } from '../store/bitstream-store.js';
import type { ClientCopy, DecodeJobResult } from '../workers/jobs.js';
import type { GatewayContext } from './context.js';
import { DecodeCache } from './decode-cache.js';
import { codecErrorStatus, HttpError } from '../http/http-error.js';
import { fetchImageUrl, isFetchableUrl, UrlFetchError } from '../lvlm-proxy/url-fetcher.js';

export const BITSTREAM_MIME = 'application/vnd.vlmpress';

export type ImageReference = { kind: 'image'; bytes: Uint8Array; origin: 'inline' | 'url' } | { kind: 'bitstream'; bytes: Uint8Array };

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w-]+=[\w.-]+)*);base64,/i;

function base64Bytes(b64: string, field: string): Uint8Array {
  if (b64.length === 0 || !/^[A-Za-z0-9+/=\s_-]+$/.test(b64))
    throw new HttpError(400, 'invalid_request', `${field} must be base64, a data URL or an http(s) URL`);
  const buf = Buffer.from(b64, 'base64');
  if (buf.length === 0) throw new HttpError(400, 'invalid_request', `${field} is empty`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * Resolve what a client sent as an image: bytes inline, bytes behind a URL, or a vlmpress bitstream.
 * `urlOnly`: the field is a URL by its API's definition (the proxy's image_url), so bare base64 is refused.
 */
export async function readImageReference(ctx: GatewayContext, text: string, field: string, urlOnly = false): Promise<ImageReference> {
  if (isFetchableUrl(text)) {
    try {
      const got = await fetchImageUrl(text, {
        maxBytes: ctx.config.fetchMaxBytes,
        timeoutMs: ctx.config.fetchTimeoutMs,
        allowCidrs: ctx.config.fetchAllowCidrs,
      });
      ctx.metrics.imageFetches.inc({ outcome: 'ok' });
      return looksLikeContainer(got.bytes) ? { kind: 'bitstream', bytes: got.bytes } : { kind: 'image', bytes: got.bytes, origin: 'url' };
    } catch (e) {
      if (e instanceof UrlFetchError) {
        ctx.metrics.imageFetches.inc({ outcome: e.code });
        throw new HttpError(e.status, e.code, `${field}: ${e.message}`, e.details);
      }
      throw e;
    }
  }
  const m = DATA_URL.exec(text);
  if (m) {
    const bytes = base64Bytes(text.slice(m[0].length), field);
    if (m[1]?.toLowerCase() === BITSTREAM_MIME) return { kind: 'bitstream', bytes };
    return { kind: 'image', bytes, origin: 'inline' };
  }
  if (urlOnly || /^[a-z][a-z0-9+.-]*:/i.test(text)) {
    throw new HttpError(400, 'invalid_image_url', `${field}: only data URLs and http(s) URLs are accepted`);
  }
  const bytes = base64Bytes(text, field);
  return looksLikeContainer(bytes) ? { kind: 'bitstream', bytes } : { kind: 'image', bytes, origin: 'inline' };
}

/** Base64 bytes with their declared media type (Anthropic's and Gemini's inline images): a bitstream when it says so. */
export function inlineImageReference(mediaType: string | undefined, data: string, field: string): ImageReference {
  const bytes = base64Bytes(data, field);
  if (mediaType?.trim().toLowerCase() === BITSTREAM_MIME) return { kind: 'bitstream', bytes };
  return { kind: 'image', bytes, origin: 'inline' };
}

/** Codec errors for one image of many name the field they came from. */
export async function withField<T>(field: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    if (isCodecError(e)) throw new HttpError(codecErrorStatus(e.code), e.code, `${field}: ${e.message}`, e.details);
    throw e;
  }
}

export interface CompressOutcome {
  id: string;
  bitstream: Uint8Array;
  meta: StoredMeta;
  /** answered from the store without encoding */
  cached: boolean;
  probes: number;
  timings: Record<string, number>;
}

/** An encode that ran here: the stored outcome and, when the job made them, its reconstruction and client copy. */
type EncodeRun = { outcome: CompressOutcome; reconstruction?: DecodeJobResult; clientCopy?: ClientCopy };

/** A reconstruction as a file: its format, and its quality for the lossy ones (WebP, JPEG). */
export interface ReconstructionFile {
  format: OutputFormat;
  quality: number;
}

async function compressAndStore(
  ctx: GatewayContext,
  image: Uint8Array,
  policy: PolicyDecision,
  reconstruction?: ReconstructionFile,
  upstreamLimit?: number,
): Promise<EncodeRun> {
  const model = ctx.defaultModel();
  const settings = {
    codec: policy.codec,
    quality: policy.quality,
    resize: policy.resize,
    modelId: model.id,
    ...(policy.maxBytes !== undefined ? { maxBytes: policy.maxBytes } : {}),
  };
  const key = cacheKey(image, settings);
  const id = await ctx.store.lookup(key);
  const hit = id ? await ctx.store.get(id) : null;
  if (hit && id) {
    ctx.metrics.cacheHits.inc();
    return { outcome: { id, ...hit, cached: true, probes: 0, timings: {} } };
  }
  // Identical images arriving together (a retried request, parallel chats) share one encode.
  const running = ctx.encodesInFlight.get(key);
  if (running) return running;
  const work = encodeAndStore(ctx, image, policy, key, reconstruction, upstreamLimit).finally(() => ctx.encodesInFlight.delete(key));
  ctx.encodesInFlight.set(key, work);
  return work;
}

async function encodeAndStore(
  ctx: GatewayContext,
  image: Uint8Array,
  policy: PolicyDecision,
  key: string,
  reconstruction?: ReconstructionFile,
  upstreamLimit?: number,
): Promise<EncodeRun> {
  const r = await ctx.runner.encode({
    image,
    codec: policy.codec,
    quality: policy.quality,
    resize: policy.resize,
    ...(policy.maxBytes !== undefined ? { maxBytes: policy.maxBytes } : {}),
    ...(reconstruction ? { reconstruction: reconstruction.format, reconstructionQuality: reconstruction.quality } : {}),
    ...(upstreamLimit !== undefined ? { upstreamLimit } : {}),
  });
  const meta: StoredMeta = {
    width: r.width,
    height: r.height,
    quality: r.quality,
    model: r.model,
    source: r.source,
    createdAt: new Date().toISOString(),
  };
  const stored = await ctx.store.put(r.bitstream, meta);
  await ctx.store.remember(key, stored);
  ctx.metrics.encodeDuration.observe((r.timings.decodeInputMs + r.timings.encodeMs) / 1000);
  // the quality histogram is on the default codec's scale
  if (policy.codec === DEFAULT_CODEC) ctx.metrics.quality.observe(r.quality);
  ctx.metrics.bpp.observe(r.bpp);
  if (r.reconstruction) {
    ctx.metrics.decodeDuration.observe(r.reconstruction.timings.decodeMs / 1000);
    // The next turn of the conversation finds it in the reconstruction cache.
    ctx.decodeCache.put(
      decodeKey(r.bitstream, { format: r.reconstruction.format, quality: reconstruction?.quality ?? 90 }),
      r.reconstruction,
    );
  }
  const outcome = { id: stored, bitstream: r.bitstream, meta, cached: false, probes: r.probes, timings: r.timings };
  return {
    outcome,
    ...(r.reconstruction ? { reconstruction: r.reconstruction } : {}),
    ...(r.clientCopy ? { clientCopy: r.clientCopy } : {}),
  };
}

export interface CompressImageRequest {
  image: Uint8Array;
  /** what the client asked for (quality, budget, task, target, prompt, backend profile, detail) */
  policy: PolicyRequest;
  /** also return the reconstruction as this file (the proxy forwards it) */
  reconstruction?: ReconstructionFile;
  /** the bytes the client sent for the image, which the proxy must not exceed upstream (EncodeJob.upstreamLimit) */
  upstreamLimit?: number;
  /** classical codecs whose file the caller forwards as it is: no reconstruction is made for them */
  passthrough?: readonly PayloadFormat[];
  /** a second opinion on the table's decision (the proxy's closed loop, src/shadow) */
  adjust?: (decision: PolicyDecision) => PolicyDecision;
}

export interface CompressedImage {
  stored: CompressOutcome;
  decision: PolicyDecision;
  reconstruction?: DecodeJobResult;
  /** made when the reconstruction file was larger than upstreamLimit and a downscaled copy of the client's image was not */
  clientCopy?: ClientCopy;
  /** the stored AVIF, WebP or JPEG file itself, when the decision's codec is one the caller passes through */
  payload?: { codec: PayloadFormat; file: Uint8Array; width: number; height: number };
}

/**
 * The one pipeline behind /compress and the proxy: image statistics when the request's words do not
 * settle the task, the policy decision, encode and store (once per identical image and settings),
 * and the reconstruction when the caller forwards it.
 */
export async function compressImage(ctx: GatewayContext, req: CompressImageRequest): Promise<CompressedImage> {
  let request = needsImageStats(req.policy) ? { ...req.policy, image: await imageStats(req.image, ctx.config.maxPixels) } : req.policy;
  // A token budget is met by the size the image is encoded at, which depends on its own size.
  if (request.maxImageTokens !== undefined) {
    const size = await imageSize(req.image);
    if (size) request = { ...request, size };
  }
  const offline = decidePolicy(ctx.config, ctx.policyTable, request);
  const decision = req.adjust ? req.adjust(offline) : offline;
  // A classical file the caller forwards as it is needs no reconstruction: no decode, no re-encode.
  const format = codecPayloadFormat(decision.codec);
  if (format && req.passthrough?.includes(format)) {
    const { outcome: stored } = await compressAndStore(ctx, req.image, decision);
    const payload = classicalPayload(stored.bitstream);
    if (payload) return { stored, decision, payload };
  }
  const run = await compressAndStore(ctx, req.image, decision, req.reconstruction, req.upstreamLimit);
  const { outcome: stored } = run;
  if (!req.reconstruction) return { stored, decision };
  // Made by the encode job itself when it ran for this request; else through the decode cache.
  const forwarded =
    run.reconstruction?.format === req.reconstruction.format
      ? run.reconstruction
      : await decodeBitstream(ctx, stored.bitstream, req.reconstruction);
  return { stored, decision, reconstruction: forwarded, ...(run.clientCopy ? { clientCopy: run.clientCopy } : {}) };
}

function decodeKey(bitstream: Uint8Array, file: ReconstructionFile): string {
  return DecodeCache.key(bitstream, file.format === 'png' ? 'png' : `${file.format}-q${file.quality}`);
}

/** Decode through the reconstruction cache: a repeated image (every turn of a chat) is decoded once. */
export async function decodeBitstream(ctx: GatewayContext, bitstream: Uint8Array, file: ReconstructionFile): Promise<DecodeJobResult> {
  return ctx.decodeCache.get(decodeKey(bitstream, file), async () => {
    const r = await ctx.runner.decode({ bitstream, format: file.format, quality: file.quality });
    ctx.metrics.decodeDuration.observe(r.timings.decodeMs / 1000);
    return r;
  });
}

/** Store a bitstream a client compressed itself (after a decode proved it valid). */
export async function storeClientBitstream(ctx: GatewayContext, bitstream: Uint8Array, decoded: DecodeJobResult): Promise<string> {
  return ctx.store.put(bitstream, {
    width: decoded.width,
    height: decoded.height,
    quality: decoded.quality,
    model: decoded.model,
    source: { format: 'vlmpress', width: decoded.width, height: decoded.height, bytes: bitstream.length },
    createdAt: new Date().toISOString(),
  });
}
