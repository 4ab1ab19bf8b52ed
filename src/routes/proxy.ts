/**
 * The OpenAI-compatible proxy: POST /v1/chat/completions and POST /v1/responses compress every image
 * of the request (src/routes/proxy-flow.ts) and relay the backend's answer unchanged; GET /v1/models
 * lists the models of every backend.
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { errors, proxyAnswer, REQUEST_SETTINGS, settingHeadersDoc, vlmpressField } from './schemas.js';
import { chatReplay, openaiDialect, readChatRequest, readResponsesRequest, responsesReplay } from '../lvlm-proxy/apis/openai.js';
import { callUpstream, relayResponse } from '../lvlm-proxy/upstream.js';
import { proxyFlow } from './proxy-flow.js';

export async function proxyRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const { forward, observe, clientCredentials } = proxyFlow(ctx);
  const modelOf = (body: unknown) => {
    const model = (body as { model?: unknown } | null)?.model;
    if (typeof model !== 'string' || model.length === 0) throw new HttpError(400, 'invalid_request', 'model is required');
    return model;
  };

  const vlmpress = vlmpressField(ctx.defaultModel().levels);
  const upstreamAnswer = proxyAnswer(errors);
  const settings =
    `Settings: headers ${settingHeadersDoc()}, or a body field \`vlmpress: {${REQUEST_SETTINGS.join(', ')}}\` (removed before forwarding). ` +
    'The backend is chosen by `model`; its answer (JSON, SSE stream or error) comes back unchanged, with `x-vlmpress-*` headers listing, per image, the bytes the client sent, stored and sent upstream, what was sent, the image tokens of the client image and of what was sent, codec quality and bitstream id.';

  app.post(
    '/v1/chat/completions',
    {
      config: { dialect: openaiDialect },
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
      forward(
        {
          dialect: openaiDialect,
          route: 'chat_completions',
          model: modelOf(req.body),
          path: '/chat/completions',
          read: readChatRequest,
          replay: { route: chatReplay, path: '/chat/completions' },
        },
        req,
        reply,
      ),
  );

  app.post(
    '/v1/responses',
    {
      config: { dialect: openaiDialect },
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
      forward(
        {
          dialect: openaiDialect,
          route: 'responses',
          model: modelOf(req.body),
          path: '/responses',
          read: readResponsesRequest,
          replay: { route: responsesReplay, path: '/responses' },
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
        summary: 'The models of every backend (one OpenAI backend: its answer as is)',
        response: { 200: { type: 'object', additionalProperties: true }, ...errors },
      },
    },
    async (req, reply) => {
      if (!ctx.backends.configured)
        throw new HttpError(503, 'upstream_not_configured', 'no upstream backend: set VLMPRESS_UPSTREAM_URL or VLMPRESS_BACKENDS_FILE');
      const list = ctx.backends.list;
      const answers = await Promise.all(
        list.map(async (backend) => {
          // Other APIs list their models elsewhere: their backends contribute the names they are configured with.
          if (backend.api !== 'openai') return { backend, error: new Error(`${backend.api} backend`) };
          const t0 = performance.now();
          try {
            const res = await callUpstream({
              backend,
              path: '/models',
              method: 'GET',
              dialect: openaiDialect,
              timeoutMs: Math.min(ctx.config.upstreamTimeoutMs, 30_000),
              clientCredentials: clientCredentials(req, openaiDialect),
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
      if (list.length === 1 && only.backend.api === 'openai') throw only.error;
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
