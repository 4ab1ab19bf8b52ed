/** POST /compress: an image in (multipart or JSON), a stored bitstream out (JSON summary or the bytes). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../server/errors.js';
import type { GatewayContext } from '../server/context.js';
import { cacheKey } from '../store/bitstream-store.js';

interface CompressInput {
  image: Uint8Array;
  quality?: number;
  maxBytes?: number;
}

const DATA_URL = /^data:([\w.+-]+\/[\w.+-]+)?(;[\w-]+=[\w.-]+)*;base64,/i;

export function decodeBase64Image(text: string, field = 'image'): Uint8Array {
  if (/^https?:\/\//i.test(text)) throw new HttpError(400, 'unsupported_image_source', `${field}: fetching image URLs is not enabled on /compress yet; send the bytes (base64 or a data URL)`);
  const b64 = text.replace(DATA_URL, '');
  if (b64.length === 0 || !/^[A-Za-z0-9+/=\s_-]+$/.test(b64)) throw new HttpError(400, 'invalid_request', `${field} must be base64 or a data URL`);
  const buf = Buffer.from(b64, 'base64');
  if (buf.length === 0) throw new HttpError(400, 'invalid_request', `${field} is empty`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function parseNumber(name: string, raw: unknown, integer: boolean, min: number, max: number): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const v = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
  if (!Number.isFinite(v) || (integer && !Number.isSafeInteger(v)) || v < min || v > max) {
    throw new HttpError(400, 'invalid_request', `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

async function readInput(req: FastifyRequest, levels: number): Promise<CompressInput> {
  let image: Uint8Array | undefined;
  const fields: Record<string, unknown> = {};
  if (req.isMultipart()) {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'image') {
          await part.toBuffer();
          continue;
        }
        const buf = await part.toBuffer();
        image = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
      } else {
        fields[part.fieldname] = part.value;
      }
    }
    if (!image) throw new HttpError(400, 'invalid_request', 'multipart body needs a file field "image"');
  } else {
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      throw new HttpError(415, 'unsupported_media_type', 'send multipart/form-data (field "image") or application/json');
    }
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_request', 'send multipart/form-data or a JSON object');
    Object.assign(fields, body);
    if (typeof fields['image'] !== 'string') throw new HttpError(400, 'invalid_request', 'JSON body needs "image" (base64 or a data URL)');
    image = decodeBase64Image(fields['image']);
  }
  const input: CompressInput = { image };
  const quality = parseNumber('quality', fields['quality'], false, 1, levels);
  const maxBytes = parseNumber('max_bytes', fields['max_bytes'], true, 1, Number.MAX_SAFE_INTEGER);
  if (quality !== undefined) input.quality = quality;
  if (maxBytes !== undefined) input.maxBytes = maxBytes;
  return input;
}

export async function compressRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.post('/compress', async (req, reply) => {
    const model = ctx.defaultModel();
    const input = await readInput(req, model.levels);
    const quality = input.quality ?? ctx.config.defaultQuality;
    const policy = {
      quality,
      source: input.quality !== undefined ? 'request' : 'default',
      ...(input.maxBytes !== undefined ? { maxBytes: input.maxBytes } : {}),
      maxSide: ctx.config.maxSide,
      reason: input.maxBytes !== undefined ? 'highest quality within max_bytes' : input.quality !== undefined ? 'quality set by the request' : 'gateway default quality (VLMPRESS_DEFAULT_QUALITY)',
    };
    const settings = { quality, maxSide: ctx.config.maxSide, modelId: model.id, ...(input.maxBytes !== undefined ? { maxBytes: input.maxBytes } : {}) };
    const key = cacheKey(input.image, settings);
    const t0 = performance.now();
    let id = await ctx.store.lookup(key);
    let stored = id ? await ctx.store.get(id) : null;
    let timings: Record<string, number> = {};
    let probes = 0;
    if (stored && id) {
      ctx.metrics.cacheHits.inc();
    } else {
      const r = await ctx.runner.encode({ image: input.image, quality, maxSide: ctx.config.maxSide, ...(input.maxBytes !== undefined ? { maxBytes: input.maxBytes } : {}) });
      const meta = { width: r.width, height: r.height, quality: r.quality, model: r.model, source: r.source, createdAt: new Date().toISOString() };
      id = await ctx.store.put(r.bitstream, meta);
      await ctx.store.remember(key, id);
      stored = { bitstream: r.bitstream, meta };
      timings = r.timings;
      probes = r.probes;
      ctx.metrics.encodeDuration.observe((r.timings.decodeInputMs + r.timings.encodeMs) / 1000);
      ctx.metrics.bytesOut.inc(r.bytes);
      ctx.metrics.quality.observe(r.quality);
      ctx.metrics.bpp.observe(r.bpp);
    }
    ctx.metrics.bytesIn.inc(input.image.length);
    ctx.metrics.bytesSaved.inc(Math.max(0, input.image.length - stored.bitstream.length));
    const { meta, bitstream } = stored;
    const summary = {
      id,
      bytes: bitstream.length,
      bpp: (8 * bitstream.length) / (meta.width * meta.height),
      quality: meta.quality,
      width: meta.width,
      height: meta.height,
      model: meta.model,
      source: meta.source,
      policy,
      cached: probes === 0,
      timings: { ...timings, totalMs: performance.now() - t0 },
    };
    void reply.header('x-vlmpress-id', id).header('x-vlmpress-quality', String(meta.quality)).header('x-vlmpress-bytes', String(bitstream.length));
    if (req.headers.accept?.split(',').some((a) => a.trim().startsWith('application/octet-stream') || a.trim().startsWith('application/vnd.vlmpress'))) {
      return reply.type('application/vnd.vlmpress').send(Buffer.from(bitstream));
    }
    return summary;
  });
}
