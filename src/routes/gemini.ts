/**
 * The Gemini API, natively: POST /v1beta/models/{model}:generateContent, :streamGenerateContent
 * (`alt=sse`, or the JSON array stream, relayed as it arrives) and :countTokens (and the same under
 * /v1), with every inline image compressed as the OpenAI routes do (src/routes/proxy-flow.ts).
 * Backends with `api: gemini` serve them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../http/http-error.js';
import type { GatewayContext } from '../pipeline/context.js';
import { generateContentReplay, geminiDialect, readGenerateContentRequest } from '../lvlm-proxy/apis/gemini.js';
import { geminiErrors, proxyAnswer, settingHeadersDoc, vlmpressField } from './schemas.js';
import { proxyFlow, queryOf } from './proxy-flow.js';

/** The methods a model resource takes here, and their metrics route label. */
const METHODS: Record<string, string> = {
  generateContent: 'generate_content',
  streamGenerateContent: 'stream_generate_content',
  countTokens: 'count_tokens_gemini',
};

export async function geminiRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const { forward } = proxyFlow(ctx);

  async function handle(version: string, req: FastifyRequest<{ Params: { call: string } }>, reply: FastifyReply) {
    // `{model}:{method}` is one path segment; the model name itself never holds a colon.
    const call = req.params.call;
    const at = call.lastIndexOf(':');
    const model = call.slice(0, at);
    const method = call.slice(at + 1);
    const route = METHODS[method];
    if (at <= 0 || !route)
      throw new HttpError(404, 'not_found', `no method "${method}" here; the gateway serves ${Object.keys(METHODS).join(', ')}`);
    // The key never goes upstream in the URL (it goes as a header); every other parameter does (alt=sse).
    const query = queryOf(req);
    query.delete('key');
    const modelPath = (m: string, q: URLSearchParams) => `/${version}/models/${encodeURIComponent(model)}:${m}${q.size ? `?${q}` : ''}`;
    const path = modelPath(method, query);
    // A stream is checked as generateContent: the same body, answered in one piece.
    const replay =
      method === 'countTokens' ? undefined : { route: generateContentReplay, path: modelPath('generateContent', new URLSearchParams()) };
    return forward(
      {
        dialect: geminiDialect,
        route,
        model,
        path,
        read: readGenerateContentRequest,
        stream: method === 'streamGenerateContent',
        ...(replay ? { replay } : {}),
      },
      req,
      reply,
    );
  }

  for (const version of ['v1beta', 'v1']) {
    app.post<{ Params: { call: string } }>(
      `/${version}/models/:call`,
      {
        config: { dialect: geminiDialect },
        schema: {
          tags: ['lvlm proxy'],
          summary: `Gemini API (${version}) generateContent, streamGenerateContent and countTokens with every inline image compressed`,
          description:
            'The path is `models/{model}:{method}`. Every `inline_data` (or `inlineData`) part is compressed, stored and replaced by what the backend gets (never more bytes than the client sent); `file_data` parts name files the provider holds and pass untouched (`x-vlmpress-untouched-images`); HEIC and HEIF, which the API reads and the codec does not, go as they came; a part with MIME type `application/vnd.vlmpress` is a vlmpress bitstream, decoded without re-encoding. ' +
            `Settings: headers ${settingHeadersDoc()}, or a body field \`vlmpress\` (removed before forwarding). Keys: \`x-goog-api-key\` or \`?key=\` (sent upstream as the header). The answer (JSON, SSE with \`alt=sse\`, the JSON array stream, or an error) comes back unchanged; errors have Google's shape.`,
          params: {
            type: 'object',
            properties: { call: { type: 'string', description: '{model}:{method}, e.g. gemini-2.5-flash:generateContent' } },
          },
          body: {
            type: 'object',
            properties: {
              contents: { type: 'array', items: { type: 'object', additionalProperties: true } },
              vlmpress: vlmpressField(ctx.defaultModel().levels),
            },
            additionalProperties: true,
          },
          response: proxyAnswer(geminiErrors),
        },
      },
      (req, reply) => handle(version, req, reply),
    );
  }
}
