/** Stored bitstreams and decoding: POST /bitstreams (a client's own), GET /bitstreams/:id, GET /bitstreams/:id/image, POST /decompress. */
import type { FastifyInstance } from 'fastify';
import { OUTPUT_FORMATS, OUTPUT_MIME, type OutputFormat } from '../codec/index.js';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { decodeBitstream, storeClientBitstream } from '../pipeline/image-service.js';
import { bitstreamCodec } from '../codec/index.js';
import { ID_PATTERN } from '../store/bitstream-store.js';
import { binaryBody, bitstreamId, BODY_DOCS, errors, formatQuery, storedResult } from './schemas.js';

export function outputFormat(raw: unknown): OutputFormat {
  const f = (typeof raw === 'string' ? raw : 'png').toLowerCase();
  const format = f === 'jpg' ? 'jpeg' : f;
  if (!(OUTPUT_FORMATS as readonly string[]).includes(format))
    throw new HttpError(400, 'invalid_request', `format must be one of ${OUTPUT_FORMATS.join(', ')}`);
  return format as OutputFormat;
}

export async function bitstreamRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const load = async (id: string) => {
    if (!ID_PATTERN.test(id)) throw new HttpError(400, 'invalid_request', 'a bitstream id is 64 lowercase hex digits');
    const found = await ctx.store.get(id);
    if (!found) throw new HttpError(404, 'not_found', `no bitstream ${id}`);
    return found;
  };

  const binary = (mime: string, description: string) => ({
    description,
    content: { [mime]: { schema: { type: 'string', format: 'binary' } } },
  });
  app.get<{ Params: { id: string } }>(
    '/bitstreams/:id',
    {
      schema: {
        tags: ['compression'],
        summary: 'A stored bitstream',
        params: bitstreamId,
        response: { 200: binary('application/vnd.vlmpress', 'the bitstream'), ...errors },
      },
    },
    async (req, reply) => {
      const { bitstream } = await load(req.params.id);
      return reply
        .type('application/vnd.vlmpress')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(Buffer.from(bitstream));
    },
  );

  // WebP and JPEG at quality 90, the codec's default for reconstruction files.
  const decodeTo = (bitstream: Uint8Array, format: OutputFormat) => decodeBitstream(ctx, bitstream, { format, quality: 90 });

  app.get<{ Params: { id: string }; Querystring: { format?: string } }>(
    '/bitstreams/:id/image',
    {
      schema: {
        tags: ['compression'],
        summary: 'A stored bitstream, decoded',
        params: bitstreamId,
        querystring: formatQuery,
        response: { 200: binary('image/png', 'the reconstruction (PNG, WebP or JPEG)'), ...errors },
      },
    },
    async (req, reply) => {
      const format = outputFormat(req.query.format);
      const { bitstream } = await load(req.params.id);
      const r = await decodeTo(bitstream, format);
      return reply.type(OUTPUT_MIME[format]).header('cache-control', 'public, max-age=31536000, immutable').send(Buffer.from(r.image));
    },
  );

  const bodyBitstream = (body: unknown): Uint8Array => {
    if (!Buffer.isBuffer(body) || body.length === 0)
      throw new HttpError(
        400,
        'invalid_request',
        'send the bitstream as the body (Content-Type: application/vnd.vlmpress or application/octet-stream)',
      );
    return new Uint8Array(body.buffer, body.byteOffset, body.length);
  };

  app.post(
    '/bitstreams',
    {
      schema: {
        tags: ['compression'],
        summary: 'Store a bitstream a client made itself (e.g. the browser encoder)',
        description:
          'The bitstream is decoded first (the same checks as every decode, and the reconstruction the proxy would forward is cached); only a valid one is stored. The answer has the fields of a /compress answer that describe the stored bitstream.',
        [BODY_DOCS]: { 'application/vnd.vlmpress': binaryBody, 'application/octet-stream': binaryBody },
        response: { 200: storedResult, ...errors },
      },
    },
    async (req) => {
      const bitstream = bodyBitstream(req.body);
      // Decoded into the proxy's upstream copy, so a chat that sends it next finds it in the cache.
      const decoded = await decodeBitstream(ctx, bitstream, { format: ctx.config.proxyImageFormat, quality: ctx.config.proxyImageQuality });
      const id = await storeClientBitstream(ctx, bitstream, decoded);
      ctx.metrics.imageBytes.inc({ route: 'bitstreams', stage: 'client' }, bitstream.length);
      ctx.metrics.imageBytes.inc({ route: 'bitstreams', stage: 'stored' }, bitstream.length);
      return {
        id,
        bytes: bitstream.length,
        bpp: (8 * bitstream.length) / (decoded.width * decoded.height),
        codec: bitstreamCodec(bitstream),
        quality: decoded.quality,
        width: decoded.width,
        height: decoded.height,
        model: decoded.model,
        // The proxy sends a client's bitstream upstream as this copy of its reconstruction.
        upstream: {
          what: 'reconstruction',
          format: decoded.format,
          bytes: decoded.image.length,
          width: decoded.width,
          height: decoded.height,
        },
      };
    },
  );

  app.post<{ Querystring: { format?: string } }>(
    '/decompress',
    {
      schema: {
        tags: ['compression'],
        summary: 'Decode a bitstream sent as the body',
        querystring: formatQuery,
        [BODY_DOCS]: { 'application/vnd.vlmpress': binaryBody, 'application/octet-stream': binaryBody },
        response: { 200: binary('image/png', 'the reconstruction (PNG, WebP or JPEG)'), ...errors },
      },
    },
    async (req, reply) => {
      const format = outputFormat(req.query.format);
      const r = await decodeTo(bodyBitstream(req.body), format);
      return reply.type(OUTPUT_MIME[format]).header('x-vlmpress-quality', String(r.quality)).send(Buffer.from(r.image));
    },
  );
}
