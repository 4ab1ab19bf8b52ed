/**
 * The one flow behind every LVLM proxy route, whatever its API: read the request's images through the
 * API's adapter, route by model to a backend of that API, compress every image (stored, then the
 * reconstruction or the stored file sent in its place, never more bytes than the client sent), report
 * per image in `x-vlmpress-*` headers and metrics, forward, and relay the answer unchanged.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bitstreamCodec, isCodecError, type CodecChoice } from '../codec/index.js';
import { decidePolicy, policyHeader, type PolicyDecision, type PolicyRequest } from '../policy/policy.js';
import { parseTarget } from '../policy/policy-table.js';
import { policyRequest } from '../policy/request-fields.js';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import {
  compressImage,
  decodeBitstream,
  inlineImageReference,
  readImageReference,
  storeClientBitstream,
  withField,
} from '../pipeline/image-service.js';
import { passthroughCodecs, type Backend } from '../lvlm-proxy/backends.js';
import { upstreamImage } from '../pipeline/upstream-image.js';
import type { ResolutionProfile } from '../policy/resolution.js';
import { imageTokens } from '../policy/tokens.js';
import { REQUEST_SETTINGS, settingHeader } from './schemas.js';
import { type ApiDialect, type ImageSlot, type RequestImages, type RouteReplay, type UpstreamFile } from '../lvlm-proxy/apis/dialect.js';
import { callUpstream, clientGone, relayResponse, type UpstreamResponse } from '../lvlm-proxy/upstream.js';

interface ImageReport {
  id: string;
  /** the bytes the client sent for the image (or its URL served) */
  clientBytes: number;
  /** the stored bitstream */
  compressedBytes: number;
  /** the image sent to the backend (before base64) */
  upstreamBytes: number;
  /** what was sent: the stored file itself, the reconstruction, the client's image downscaled, or as it came */
  upstream: 'stored' | 'reconstruction' | 'client_resized' | 'client';
  /** its format (png, webp, jpeg, or the client's own) */
  upstreamFormat: string;
  /** the stored bitstream's codec and quality on its scale: sent back as settings, they mean the same */
  codec: CodecChoice;
  quality: number;
  how: 'encoded' | 'cached' | 'client_bitstream';
  /** image tokens by the backend profile's rule (null: no known rule) */
  clientTokens: number | null;
  upstreamTokens: number | null;
}

/** One image's outcome: what goes upstream in its place (null: the client's bytes stay), or left alone. */
type Rewritten = { upstream: UpstreamFile | null; report: ImageReport; policy: PolicyDecision } | { untouched: true };

/** The response headers that carry one value per image, and where each value comes from. */
const PER_IMAGE_HEADERS: [string, (r: ImageReport) => string | number | null][] = [
  ['x-vlmpress-original-bytes', (r) => r.clientBytes],
  ['x-vlmpress-compressed-bytes', (r) => r.compressedBytes],
  ['x-vlmpress-upstream-bytes', (r) => r.upstreamBytes],
  ['x-vlmpress-upstream', (r) => `${r.upstream}/${r.upstreamFormat}`],
  ['x-vlmpress-original-tokens', (r) => r.clientTokens],
  ['x-vlmpress-upstream-tokens', (r) => r.upstreamTokens],
  ['x-vlmpress-codec', (r) => r.codec],
  ['x-vlmpress-quality', (r) => r.quality],
  ['x-vlmpress-ids', (r) => r.id],
];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the LVLM API a proxy route speaks: its key header and error shape apply to the route's answers */
    dialect?: ApiDialect;
  }
}

/** The LVLM API of the route a request matched, if it is a proxy route. */
export const routeDialect = (req: FastifyRequest): ApiDialect | undefined => req.routeOptions?.config?.dialect;

/** One proxied call: the API, the route (a metrics label), the model, and where it goes upstream. */
export interface ProxiedCall {
  dialect: ApiDialect;
  route: string;
  model: string;
  /** checks the request's own shape; returns its images and words */
  read(request: Record<string, unknown>): RequestImages;
  /** path (and query) under the backend's base URL */
  path: string;
  /** the answer is a stream even when not SSE */
  stream?: boolean;
  /** how shadow checks replay the route (absent: never shadowed, e.g. token counts) */
  replay?: { route: RouteReplay; path: string };
}

/**
 * Per-request settings: `vlmpress: {...}` in the body (its shape checked by the route schema, removed
 * before forwarding) over x-vlmpress-* headers.
 */
function requestOptions(req: FastifyRequest, body: Record<string, unknown>, levels: number, targets: string[]) {
  const fields: Record<string, unknown> = {};
  for (const field of REQUEST_SETTINGS) {
    const v = req.headers[settingHeader(field)];
    if (typeof v === 'string') fields[field] = v;
  }
  Object.assign(fields, body['vlmpress'] ?? {});
  delete body['vlmpress'];
  return policyRequest(fields, levels, targets);
}

/** Whether an API reads an image format as libvips names it (every HEIF is `heif`; the APIs list HEIC, HEVC-coded HEIF, too). */
function apiReads(dialect: ApiDialect, format: unknown): boolean {
  if (format === 'heif') return dialect.formats.has('heif') || dialect.formats.has('heic');
  return typeof format === 'string' && dialect.formats.has(format);
}

/** The query of a request URL, for the APIs that take keys there. */
export const queryOf = (req: FastifyRequest) => new URLSearchParams(req.url.split('?')[1] ?? '');

export function proxyFlow(ctx: GatewayContext) {
  const observe = (backend: Backend, route: string, status: string, t0: number) =>
    ctx.metrics.upstreamDuration.observe({ backend: backend.name, route, status }, (performance.now() - t0) / 1000);
  /** The client's own credentials go upstream only when the gateway has no keys (else they are the gateway's). */
  const clientCredentials = (req: FastifyRequest, dialect: ApiDialect) =>
    ctx.config.apiKeys.length === 0 ? dialect.clientCredentials(req.headers, queryOf(req)) : {};

  async function rewriteImage(
    slot: ImageSlot,
    request: PolicyRequest & { profile: ResolutionProfile },
    backend: Backend,
    dialect: ApiDialect,
    adjust?: (decision: PolicyDecision) => PolicyDecision,
  ): Promise<Rewritten> {
    const { field, source } = slot;
    const file = { format: ctx.config.proxyImageFormat, quality: ctx.config.proxyImageQuality };
    const ref =
      source.kind === 'url'
        ? await readImageReference(ctx, source.url, field, true)
        : inlineImageReference(source.mediaType, source.data, field);
    const tokens = (w: number, h: number) => imageTokens(request.profile, w, h, request.detail);
    return withField(field, async () => {
      if (ref.kind === 'bitstream') {
        // Compressed by the client already: decode, never re-encode (the decision is only reported).
        // The backend cannot read a bitstream, so its reconstruction goes, whatever its size.
        const policy = decidePolicy(ctx.config, ctx.policyTable, request);
        const decoded = await decodeBitstream(ctx, ref.bytes, file);
        const id = await storeClientBitstream(ctx, ref.bytes, decoded);
        const t = tokens(decoded.width, decoded.height);
        return {
          upstream: { format: file.format, bytes: decoded.image },
          policy,
          report: {
            id,
            clientBytes: ref.bytes.length,
            compressedBytes: ref.bytes.length,
            upstreamBytes: decoded.image.length,
            upstream: 'reconstruction',
            upstreamFormat: file.format,
            codec: bitstreamCodec(ref.bytes),
            quality: decoded.quality,
            how: 'client_bitstream',
            clientTokens: t,
            upstreamTokens: t,
          },
        };
      }
      const clientBytes = ref.bytes.length;
      let compressed;
      try {
        compressed = await compressImage(ctx, {
          image: ref.bytes,
          policy: request,
          reconstruction: file,
          upstreamLimit: clientBytes,
          passthrough: passthroughCodecs(backend),
          ...(adjust ? { adjust } : {}),
        });
      } catch (e) {
        // A format the API reads but the codec cannot (HEIC on Gemini) goes as it came, uncompressed.
        if (isCodecError(e) && e.code === 'unsupported_image_format' && apiReads(dialect, e.details?.['format']))
          return { untouched: true };
        throw e;
      }
      const { stored: out, decision } = compressed;
      const sent = upstreamImage(compressed, clientBytes, file, dialect.formats);
      return {
        upstream: sent.bytes ? { format: sent.format, bytes: sent.bytes } : null,
        policy: sent.why ? { ...decision, reason: `${decision.reason}; upstream: ${sent.why}` } : decision,
        report: {
          id: out.id,
          clientBytes,
          compressedBytes: out.bitstream.length,
          codec: decision.codec,
          quality: out.meta.quality,
          how: out.cached ? 'cached' : 'encoded',
          clientTokens: tokens(out.meta.source.width, out.meta.source.height),
          upstreamBytes: sent.byteLength,
          upstream: sent.kind,
          upstreamFormat: sent.format,
          upstreamTokens: tokens(sent.width, sent.height),
        },
      };
    });
  }

  /** The backend of `model` among those of the call's API (a model another API's backend serves is a 400). */
  function backendFor(call: ProxiedCall): Backend {
    if (!ctx.backends.configured)
      throw new HttpError(503, 'upstream_not_configured', 'no upstream backend: set VLMPRESS_UPSTREAM_URL or VLMPRESS_BACKENDS_FILE');
    const backend = ctx.backends.route(call.model, call.dialect.api);
    if (!backend) throw new HttpError(404, 'model_not_found', `no backend serves model "${call.model}"`);
    if (backend.api !== call.dialect.api)
      throw new HttpError(
        400,
        'wrong_api',
        `model "${call.model}" is served by backend ${backend.name}, which speaks the ${backend.api} API, not the ${call.dialect.api} API of this route; the gateway does not translate between APIs`,
        { backend: backend.name, api: backend.api },
      );
    return backend;
  }

  /** Compress every image of `request` in place, report them, forward it and relay the answer. */
  async function forward(call: ProxiedCall, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
    const request = body as Record<string, unknown>;
    const { slots, prompt: words, untouched } = call.read(request);
    const backend = backendFor(call);

    const options = requestOptions(req, request, ctx.defaultModel().levels, ctx.targets);
    const prompt = options.prompt ?? words;
    if (slots.length > ctx.config.proxyMaxImages)
      throw new HttpError(
        400,
        'too_many_images',
        `${slots.length} images in one request; the limit is ${ctx.config.proxyMaxImages} (VLMPRESS_PROXY_MAX_IMAGES)`,
      );
    // A shadow check needs the request with the client's own images: copied before they are replaced.
    const original = call.replay && slots.length > 0 && ctx.shadow.picks(backend, req.headers) ? structuredClone(request) : undefined;
    // One decision per image: the backend's view depends on each image's `detail`, the class may on its content.
    const imagePolicy = (s: ImageSlot) => ({
      ...options,
      prompt,
      profile: backend.profile,
      ...(s.detail ? { detail: s.detail } : {}),
      ...(options.maxImageTokens === undefined && backend.maxImageTokens ? { maxImageTokens: backend.maxImageTokens } : {}),
    });
    // The closed loop may move the table's choice for a shadowed backend (src/shadow/controller.ts).
    const adjust = (d: PolicyDecision) => ctx.shadow.adjust(d, backend, call.model);
    const outcomes = await Promise.all(slots.map((s) => rewriteImage(s, imagePolicy(s), backend, call.dialect, adjust)));
    const api = call.dialect.api;
    const results = outcomes.flatMap((r, i) => ('untouched' in r ? [] : [{ ...r, slot: slots[i]! }]));
    const left = untouched + outcomes.length - results.length;
    if (left) ctx.metrics.proxyImages.inc({ api, how: 'untouched' }, left);
    for (const { upstream, report, slot } of results) {
      if (upstream) slot.set(upstream);
      ctx.metrics.proxyImages.inc({ api, how: report.how });
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'client' }, report.clientBytes);
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'stored' }, report.compressedBytes);
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'upstream' }, report.upstreamBytes);
      if (report.clientTokens !== null && report.upstreamTokens !== null) {
        ctx.metrics.imageTokens.inc({ profile: backend.profile, stage: 'client' }, report.clientTokens);
        ctx.metrics.imageTokens.inc({ profile: backend.profile, stage: 'upstream' }, report.upstreamTokens);
      }
    }

    void reply.header('x-vlmpress-backend', backend.name).header('x-vlmpress-images', String(results.length));
    if (left) void reply.header('x-vlmpress-untouched-images', String(left));
    if (results.length) {
      // One value per image, in the order of the request's image parts.
      for (const [name, value] of PER_IMAGE_HEADERS)
        void reply.header(name, results.map((r) => String(value(r.report) ?? 'unknown')).join(','));
      void reply.header('x-vlmpress-policy', results.map((r) => policyHeader(r.policy)).join(', '));
    }

    if (original && call.replay && results.length) {
      const { route, path } = call.replay;
      const [{ policy, report }] = results as [(typeof results)[0]];
      const target = policy.target ? parseTarget(policy.target) : null;
      const points = new Set(results.map((r) => `${r.policy.taskClass}\t${r.report.codec}\t${r.report.quality}\t${r.report.upstream}`));
      // One verdict per request: it is evidence for one operating point the policy chose, so every image must be at it.
      if (points.size > 1 || !target || (policy.source !== 'policy' && policy.source !== 'shadow'))
        ctx.shadow.skip(backend, 'skipped_mixed');
      else {
        const atPoint = (r: { report: ImageReport }) => r.report.upstream === 'stored' || r.report.upstream === 'reconstruction';
        const requestAt = async (quality: number) => {
          const copy = structuredClone(original);
          const again = call.read(copy).slots;
          const probed = await Promise.all(
            again.map((s) => rewriteImage(s, { ...imagePolicy(s), codec: report.codec, quality }, backend, call.dialect)),
          );
          if (probed.some((r) => 'untouched' in r || !atPoint(r) || !r.upstream)) return null;
          probed.forEach((r, i) => 'upstream' in r && r.upstream && again[i]!.set(r.upstream));
          return copy;
        };
        const check = {
          backend,
          dialect: call.dialect,
          replay: route,
          path,
          model: call.model,
          original,
          sent: request,
          point: {
            taskClass: policy.taskClass,
            codec: report.codec,
            // What went is at the point only when it is the stored file or its reconstruction.
            quality: atPoint(results[0]!) ? report.quality : null,
            offline: policy.offlineQuality ?? policy.quality,
            target: target.value,
          },
          requestAt,
          clientCredentials: clientCredentials(req, call.dialect),
          clientHeaders: req.headers,
        };
        // After the client has its whole answer: never on its latency path.
        reply.raw.once('finish', () => ctx.shadow.enqueue(check));
      }
    }

    const t0 = performance.now();
    let res: UpstreamResponse;
    try {
      res = await callUpstream({
        backend,
        dialect: call.dialect,
        path: call.path,
        method: 'POST',
        body: JSON.stringify(request),
        timeoutMs: ctx.config.upstreamTimeoutMs,
        clientCredentials: clientCredentials(req, call.dialect),
        clientHeaders: req.headers,
        signal: clientGone(req, reply),
      });
    } catch (e) {
      observe(backend, call.route, 'error', t0);
      throw e;
    }
    observe(backend, call.route, String(res.statusCode), t0);
    return relayResponse(reply, res, call.stream);
  }

  return { forward, observe, clientCredentials };
}
