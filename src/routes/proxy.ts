/**
 * The OpenAI-compatible proxy: POST /v1/chat/completions and POST /v1/responses compress every image
 * of the request (stored, then decoded, and the reconstruction forwarded in its place) and relay the
 * backend's answer unchanged; GET /v1/models lists the models of every backend.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { bitstreamCodec, type CodecChoice } from '../codec/index.js';
import { decidePolicy, policyHeader, type PolicyDecision, type PolicyRequest } from '../policy/policy.js';
import { policyRequest } from '../policy/request-fields.js';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { compressImage, dataUrl, decodeBitstream, readImageReference, storeClientBitstream, withField } from '../pipeline/image-service.js';
import { passthroughCodecs, type Backend } from '../lvlm-proxy/backends.js';
import { upstreamImage } from '../pipeline/upstream-image.js';
import type { ResolutionProfile } from '../policy/resolution.js';
import { imageTokens } from '../policy/tokens.js';
import { errors, REQUEST_SETTINGS, settingHeader, vlmpressField } from './schemas.js';
import { chatPromptText, findImageParts, findResponsesImageParts, responsesPromptText, type ImageSlot } from '../lvlm-proxy/image-parts.js';
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

export async function proxyRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const observe = (backend: Backend, route: string, status: string, t0: number) =>
    ctx.metrics.upstreamDuration.observe({ backend: backend.name, route, status }, (performance.now() - t0) / 1000);
  const clientAuthorization = (req: FastifyRequest) => (ctx.config.apiKeys.length === 0 ? req.headers.authorization : undefined);

  async function rewriteImage(
    url: string,
    field: string,
    request: PolicyRequest & { profile: ResolutionProfile },
    backend: Backend,
  ): Promise<{ url: string; report: ImageReport; policy: PolicyDecision }> {
    const file = { format: ctx.config.proxyImageFormat, quality: ctx.config.proxyImageQuality };
    const ref = await readImageReference(ctx, url, field, true);
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
          url: dataUrl(file.format, decoded.image),
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
      const compressed = await compressImage(ctx, {
        image: ref.bytes,
        policy: request,
        reconstruction: file,
        upstreamLimit: clientBytes,
        passthrough: passthroughCodecs(backend),
      });
      const { stored: out, decision } = compressed;
      const sent = upstreamImage(compressed, clientBytes, file);
      return {
        url: sent.bytes ? dataUrl(sent.format, sent.bytes) : url,
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

  /** What differs between the two OpenAI APIs the proxy serves: where images and words are, and the upstream path. */
  interface ProxiedApi {
    route: 'chat_completions' | 'responses';
    path: string;
    /** checks the request's own shape; returns its image slots and prompt text */
    read(request: Record<string, unknown>): { slots: ImageSlot[]; prompt: string };
  }

  async function proxy(api: ProxiedApi, req: FastifyRequest, reply: FastifyReply) {
    const body = req.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'invalid_request', 'the body must be a JSON object');
    const request = body as Record<string, unknown>;
    if (typeof request['model'] !== 'string' || request['model'].length === 0)
      throw new HttpError(400, 'invalid_request', 'model is required');
    const { slots, prompt: words } = api.read(request);
    if (!ctx.backends.configured)
      throw new HttpError(503, 'upstream_not_configured', 'no upstream backend: set VLMPRESS_UPSTREAM_URL or VLMPRESS_BACKENDS_FILE');
    const backend = ctx.backends.route(request['model']);
    if (!backend) throw new HttpError(404, 'model_not_found', `no backend serves model "${request['model']}"`);

    const options = requestOptions(req, request, ctx.defaultModel().levels, ctx.targets);
    const prompt = options.prompt ?? words;
    if (slots.length > ctx.config.proxyMaxImages)
      throw new HttpError(
        400,
        'too_many_images',
        `${slots.length} images in one request; the limit is ${ctx.config.proxyMaxImages} (VLMPRESS_PROXY_MAX_IMAGES)`,
      );
    // One decision per image: the backend's view depends on each image's `detail`, the class may on its content.
    const results = await Promise.all(
      slots.map((s) =>
        rewriteImage(
          s.url,
          s.field,
          {
            ...options,
            prompt,
            profile: backend.profile,
            ...(s.detail ? { detail: s.detail } : {}),
            ...(options.maxImageTokens === undefined && backend.maxImageTokens ? { maxImageTokens: backend.maxImageTokens } : {}),
          },
          backend,
        ),
      ),
    );
    const policies = results.map((r) => r.policy);
    results.forEach((r, i) => {
      slots[i]!.set(r.url);
      const { report } = r;
      ctx.metrics.proxyImages.inc({ how: report.how });
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'client' }, report.clientBytes);
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'stored' }, report.compressedBytes);
      ctx.metrics.imageBytes.inc({ route: 'proxy', stage: 'upstream' }, report.upstreamBytes);
      if (report.clientTokens !== null && report.upstreamTokens !== null) {
        ctx.metrics.imageTokens.inc({ profile: backend.profile, stage: 'client' }, report.clientTokens);
        ctx.metrics.imageTokens.inc({ profile: backend.profile, stage: 'upstream' }, report.upstreamTokens);
      }
    });

    void reply.header('x-vlmpress-backend', backend.name).header('x-vlmpress-images', String(results.length));
    if (results.length) {
      // One value per image, in the order of the request's image parts.
      for (const [name, value] of PER_IMAGE_HEADERS)
        void reply.header(name, results.map((r) => String(value(r.report) ?? 'unknown')).join(','));
      void reply.header('x-vlmpress-policy', policies.map(policyHeader).join(', '));
    }

    const t0 = performance.now();
    let res: UpstreamResponse;
    try {
      res = await callUpstream({
        backend,
        path: api.path,
        method: 'POST',
        body: JSON.stringify(request),
        timeoutMs: ctx.config.upstreamTimeoutMs,
        clientAuthorization: clientAuthorization(req),
        clientHeaders: req.headers,
        signal: clientGone(req, reply),
      });
    } catch (e) {
      observe(backend, api.route, 'error', t0);
      throw e;
    }
    observe(backend, api.route, String(res.statusCode), t0);
    return relayResponse(reply, res);
  }

  const vlmpress = vlmpressField(ctx.defaultModel().levels);
  const upstreamAnswer = {
    200: {
      description: 'the upstream answer, unchanged (application/json or text/event-stream)',
      type: 'object',
      additionalProperties: true,
    },
    ...errors,
  };
  const headerList = REQUEST_SETTINGS.map((f) => '`' + settingHeader(f) + '`').join(', ');
  const settings =
    `Settings: headers ${headerList}, or a body field \`vlmpress: {${REQUEST_SETTINGS.join(', ')}}\` (removed before forwarding). ` +
    'The backend is chosen by `model`; its answer (JSON, SSE stream or error) comes back unchanged, with `x-vlmpress-*` headers listing, per image, the bytes the client sent, stored and sent upstream, what was sent, the image tokens of the client image and of what was sent, codec quality and bitstream id.';

  app.post(
    '/v1/chat/completions',
    {
      schema: {
        tags: ['lvlm proxy'],
        summary: 'OpenAI-compatible chat completions with every image compressed',
        description: `Every \`image_url\` part (data URL or http(s) URL) is compressed, stored, decoded and replaced by a copy of its reconstruction in an accepted format (never more bytes than the client sent: else the client's image goes, downscaled or as it came); \`data:application/vnd.vlmpress;base64,...\` parts are decoded without re-encoding. ${settings}`,
        body: {
          type: 'object',
          required: ['model', 'messages'],
          properties: {
            model: { type: 'string' },
            messages: { type: 'array', items: { type: 'object', additionalProperties: true } },
            stream: { type: 'boolean' },
            vlmpress,
          },
          additionalProperties: true,
        },
        response: upstreamAnswer,
      },
    },
    (req, reply) =>
      proxy(
        {
          route: 'chat_completions',
          path: '/chat/completions',
          read: (request) => {
            if (!Array.isArray(request['messages'])) throw new HttpError(400, 'invalid_request', 'messages must be an array');
            return { slots: findImageParts(request['messages']), prompt: chatPromptText(request['messages']) };
          },
        },
        req,
        reply,
      ),
  );

  app.post(
    '/v1/responses',
    {
      schema: {
        tags: ['lvlm proxy'],
        summary: 'OpenAI-compatible Responses API with every image compressed',
        description: `Every \`input_image\` part given by \`image_url\` (data URL or http(s) URL) is compressed, stored, decoded and replaced by a copy of its reconstruction in an accepted format (never more bytes than the client sent: else the client's image goes, downscaled or as it came); \`data:application/vnd.vlmpress;base64,...\` images are decoded without re-encoding; images given by \`file_id\` pass through untouched. ${settings}`,
        body: {
          type: 'object',
          required: ['model', 'input'],
          properties: {
            model: { type: 'string' },
            input: { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'object', additionalProperties: true } }] },
            stream: { type: 'boolean' },
            vlmpress,
          },
          additionalProperties: true,
        },
        response: upstreamAnswer,
      },
    },
    (req, reply) =>
      proxy(
        {
          route: 'responses',
          path: '/responses',
          read: (request) => ({ slots: findResponsesImageParts(request['input']), prompt: responsesPromptText(request) }),
        },
        req,
        reply,
      ),
  );

  app.get(
    '/v1/models',
    {
      schema: {
        tags: ['lvlm proxy'],
        summary: 'The models of every backend (one backend: its answer as is)',
        response: { 200: { type: 'object', additionalProperties: true }, ...errors },
      },
    },
    async (req, reply) => {
      if (!ctx.backends.configured)
        throw new HttpError(503, 'upstream_not_configured', 'no upstream backend: set VLMPRESS_UPSTREAM_URL or VLMPRESS_BACKENDS_FILE');
      const list = ctx.backends.list;
      const answers = await Promise.all(
        list.map(async (backend) => {
          const t0 = performance.now();
          try {
            const res = await callUpstream({
              backend,
              path: '/models',
              method: 'GET',
              timeoutMs: Math.min(ctx.config.upstreamTimeoutMs, 30_000),
              clientAuthorization: clientAuthorization(req),
              clientHeaders: req.headers,
            });
            observe(backend, 'models', String(res.statusCode), t0);
            return { backend, res };
          } catch (e) {
            observe(backend, 'models', 'error', t0);
            return { backend, error: e as Error };
          }
        }),
      );
      // One backend: its answer exactly, errors included.
      const only = answers[0]!;
      if (list.length === 1 && only.res) return relayResponse(reply, only.res);
      if (list.length === 1) throw only.error;
      // Several: the union; a backend that cannot be asked contributes the names it is configured with.
      const seen = new Set<string>();
      const data: Record<string, unknown>[] = [];
      for (const a of answers) {
        let models: Record<string, unknown>[] = [];
        if (a.res && a.res.statusCode >= 200 && a.res.statusCode < 300) {
          const json = (await a.res.body.json().catch(() => null)) as { data?: unknown } | null;
          if (Array.isArray(json?.data))
            models = json.data.filter(
              (m): m is Record<string, unknown> => typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'string',
            );
        } else {
          await a.res?.body.dump();
          models = a.backend.models
            .filter((m) => !m.includes('*'))
            .map((id) => ({ id, object: 'model', created: 0, owned_by: a.backend.name }));
        }
        for (const m of models) {
          if (seen.has(m['id'] as string)) continue;
          seen.add(m['id'] as string);
          data.push(m);
        }
      }
      return { object: 'list', data };
    },
  );
}
