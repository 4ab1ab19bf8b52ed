/**
 * The OpenAPI description served at /docs (Swagger UI) and /docs/json. Request schemas are also the
 * validation (the error handler answers 400 invalid_request); response schemas only document, and
 * answers are serialised as they are. A multipart body is streamed by its route, so its schema (under
 * BODY_DOCS, with binary bodies) is added to the description here and never validated.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { BODY_DOCS } from '../routes/schemas.js';

export async function installOpenApi(app: FastifyInstance, version: string): Promise<void> {
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
    transform: ({ schema, url }) => {
      if (!schema || !(BODY_DOCS in schema)) return { schema, url };
      const { [BODY_DOCS]: docs, ...rest } = schema as Record<string, unknown>;
      const body = rest['body'] as { content?: Record<string, unknown> } | undefined;
      const content = { ...(body?.content ?? {}) };
      for (const [type, doc] of Object.entries(docs as Record<string, unknown>)) content[type] = { schema: doc };
      return { schema: { ...rest, body: { ...body, content } } as typeof schema, url };
    },
    openapi: {
      info: {
        title: 'vlmpress gateway',
        version,
        description:
          'Compresses images with a learned codec tuned for what vision-language models understand, stores the bitstreams, and proxies OpenAI-compatible chat completions with every image compressed. Errors are `{"error": {"code", "message"}}`.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'one of VLMPRESS_API_KEYS (when set)' } } },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'compression', description: 'encode, store and decode images' },
        { name: 'lvlm proxy', description: 'OpenAI-compatible endpoints that compress images on the way upstream' },
        { name: 'policy', description: 'the calibrated policy and its decisions, for the inspector page and client-side encoders' },
        { name: 'operations', description: 'probes and metrics (no key needed)' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
