/** POST /compress: an image in (multipart, or JSON with base64, a data URL or an http(s) URL), a stored bitstream out (JSON summary or the bytes). */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { looksLikeContainer } from '../codec/index.js';
import { policyHeader } from '../policy/policy.js';
import { parseFlag, policyRequest, viewRequest } from '../policy/request-fields.js';
import { imageTokens } from '../policy/tokens.js';
import { upstreamImage } from '../pipeline/upstream-image.js';
import { passthroughCodecs } from '../lvlm-proxy/backends.js';
import { binaryBody, BODY_DOCS, compressResult, errors, policyFields, viewFields } from './schemas.js';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { BITSTREAM_MIME, compressImage, readImageReference } from '../pipeline/image-service.js';

const alreadyCompressed = () =>
  new HttpError(400, 'already_compressed', 'image is a vlmpress bitstream already; use POST /decompress to decode it');

async function readInput(ctx: GatewayContext, req: FastifyRequest): Promise<{ image: Uint8Array; fields: Record<string, unknown> }> {
  const fields: Record<string, unknown> = {};
  if (req.isMultipart()) {
    let image: Uint8Array | undefined;
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        const buf = await part.toBuffer();
        if (part.fieldname === 'image') image = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
      } else {
        fields[part.fieldname] = part.value;
      }
    }
    if (!image) throw new HttpError(400, 'invalid_request', 'multipart body needs a file field "image"');
    if (looksLikeContainer(image)) throw alreadyCompressed();
    return { image, fields };
  }
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new HttpError(415, 'unsupported_media_type', 'send multipart/form-data (field "image") or application/json');
  }
  const body = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new HttpError(400, 'invalid_request', 'send multipart/form-data or a JSON object');
  Object.assign(fields, body);
  if (typeof fields['image'] !== 'string')
    throw new HttpError(400, 'invalid_request', 'JSON body needs "image" (base64, a data URL or an http(s) URL)');
  const ref = await readImageReference(ctx, fields['image'], 'image');
  if (ref.kind === 'bitstream') throw alreadyCompressed();
  return { image: ref.bytes, fields };
}

export async function compressRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const fields = {
    ...policyFields(ctx.defaultModel().levels),
    ...viewFields,
    upstream: {
      type: ['boolean', 'string'],
      enum: [true, false, 'true', 'false', '1', '0'],
      description:
        'also report what the proxy would send the backend in place of this image (its bytes, format, size and image tokens), as the default backend reads formats',
    },
  };
  app.post(
    '/compress',
    {
      schema: {
        tags: ['compression'],
        summary: 'Compress an image and store the bitstream',
        description:
          'multipart/form-data with a file field `image` (plus optional fields), or JSON with `image` as base64, a data URL or an http(s) URL (fetched with SSRF checks). With `Accept: application/octet-stream` the answer is the bitstream itself.',
        body: {
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['image'],
                properties: { image: { type: 'string', description: 'base64, data URL or http(s) URL' }, ...fields },
              },
            },
          },
        },
        // Multipart bodies are streamed by the handler (the file is never parsed into req.body), so
        // their schema documents the form; its fields go through policyRequest (server/openapi.ts).
        [BODY_DOCS]: { 'multipart/form-data': { type: 'object', required: ['image'], properties: { image: binaryBody, ...fields } } },
        response: { 200: compressResult, ...errors },
      },
    },
    async (req, reply) => {
      const t0 = performance.now();
      const model = ctx.defaultModel();
      const { image, fields } = await readInput(ctx, req);
      const view = viewRequest(fields);
      const wantUpstream = parseFlag('upstream', fields['upstream']);
      // With `upstream`, the same encode as the proxy's: its reconstruction copy, the client's bytes as the limit.
      const file = { format: ctx.config.proxyImageFormat, quality: ctx.config.proxyImageQuality };
      const compressed = await compressImage(ctx, {
        image,
        policy: { ...policyRequest(fields, model.levels, ctx.targets), ...view },
        ...(wantUpstream
          ? { reconstruction: file, upstreamLimit: image.length, passthrough: passthroughCodecs(ctx.backends.route('')) }
          : {}),
      });
      const { stored: out, decision: policy } = compressed;
      const profile = view.profile ?? 'none';
      const tokens = (w: number, h: number) => imageTokens(profile, w, h, view.detail);
      const sent = wantUpstream ? upstreamImage(compressed, image.length, file) : null;
      const { meta, bitstream } = out;
      ctx.metrics.imageBytes.inc({ route: 'compress', stage: 'client' }, image.length);
      ctx.metrics.imageBytes.inc({ route: 'compress', stage: 'stored' }, bitstream.length);
      void reply
        .header('x-vlmpress-id', out.id)
        .header('x-vlmpress-codec', policy.codec)
        .header('x-vlmpress-quality', String(meta.quality))
        .header('x-vlmpress-bytes', String(bitstream.length))
        .header('x-vlmpress-policy', policyHeader(policy));
      if (
        req.headers.accept?.split(',').some((a) => a.trim().startsWith('application/octet-stream') || a.trim().startsWith(BITSTREAM_MIME))
      ) {
        return reply.type(BITSTREAM_MIME).send(Buffer.from(bitstream));
      }
      return {
        id: out.id,
        bytes: bitstream.length,
        bpp: (8 * bitstream.length) / (meta.width * meta.height),
        codec: policy.codec,
        quality: meta.quality,
        width: meta.width,
        height: meta.height,
        model: meta.model,
        source: meta.source,
        policy: sent?.why ? { ...policy, reason: `${policy.reason}; upstream: ${sent.why}` } : policy,
        tokens: { profile, original: tokens(meta.source.width, meta.source.height), encoded: tokens(meta.width, meta.height) },
        ...(sent
          ? {
              upstream: {
                what: sent.kind,
                format: sent.format,
                bytes: sent.byteLength,
                width: sent.width,
                height: sent.height,
                tokens: tokens(sent.width, sent.height),
              },
            }
          : {}),
        cached: out.cached,
        timings: { ...out.timings, totalMs: performance.now() - t0 },
      };
    },
  );
}
