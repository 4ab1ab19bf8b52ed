/**
 * The Anthropic Messages API, natively: POST /v1/messages (JSON or its SSE stream, relayed event by
 * event) and POST /v1/messages/count_tokens, with every image compressed as the OpenAI routes do
 * (src/routes/proxy-flow.ts). Backends with `api: anthropic` serve them.
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { anthropicDialect, messagesReplay, readMessagesRequest } from '../lvlm-proxy/apis/anthropic.js';
import { anthropicErrors, proxyAnswer, settingHeadersDoc, vlmpressField } from './schemas.js';
import { proxyFlow, queryOf } from './proxy-flow.js';

export async function anthropicRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const { forward } = proxyFlow(ctx);
  const body = {
    type: 'object',
    required: ['model', 'messages'],
    properties: {
      model: { type: 'string', minLength: 1 },
      messages: { type: 'array', items: { type: 'object', additionalProperties: true } },
      stream: { type: 'boolean' },
      vlmpress: vlmpressField(ctx.defaultModel().levels),
    },
    additionalProperties: true,
  };
  const answer = proxyAnswer(anthropicErrors);
  const images =
    'Every `image` block with a `base64` or `url` source, in user messages and inside `tool_result` content, is compressed, stored and replaced by a base64 copy of what the backend gets (never more bytes than the client sent); `file` sources pass untouched; a base64 source with media type `application/vnd.vlmpress` is a vlmpress bitstream, decoded without re-encoding. ' +
    `Settings: headers ${settingHeadersDoc()}, or a body field \`vlmpress\` (removed before forwarding). Keys: \`x-api-key\` or \`Authorization: Bearer\`; \`anthropic-version\` and \`anthropic-beta\` are passed on. Errors have Anthropic's shape.`;
  /** The upstream path with the client's query (the SDK's `?beta=true`). */
  const path = (p: string, q: URLSearchParams) => (q.size ? `${p}?${q}` : p);
  const model = (b: unknown) => {
    const m = (b as { model?: unknown }).model;
    if (typeof m !== 'string') throw new HttpError(400, 'invalid_request', 'model is required');
    return m;
  };

  app.post(
    '/v1/messages',
    {
      config: { dialect: anthropicDialect },
      schema: {
        tags: ['lvlm proxy'],
        summary: 'Anthropic Messages API with every image compressed',
        description: `${images} The answer (JSON, SSE stream, error) comes back unchanged, with the same \`x-vlmpress-*\` headers as the OpenAI routes.`,
        body,
        response: answer,
      },
    },
    (req, reply) =>
      forward(
        {
          dialect: anthropicDialect,
          route: 'messages',
          model: model(req.body),
          path: path('/v1/messages', queryOf(req)),
          read: readMessagesRequest,
          replay: { route: messagesReplay, path: path('/v1/messages', queryOf(req)) },
        },
        req,
        reply,
      ),
  );

  app.post(
    '/v1/messages/count_tokens',
    {
      config: { dialect: anthropicDialect },
      schema: {
        tags: ['lvlm proxy'],
        summary: 'Anthropic token count of a Messages request, its images replaced as /v1/messages would replace them',
        description: `${images} The backend counts the request as it would be sent, so the count is what the compressed request costs.`,
        body,
        response: answer,
      },
    },
    (req, reply) =>
      forward(
        {
          dialect: anthropicDialect,
          route: 'count_tokens',
          model: model(req.body),
          path: path('/v1/messages/count_tokens', queryOf(req)),
          read: readMessagesRequest,
        },
        req,
        reply,
      ),
  );
}
