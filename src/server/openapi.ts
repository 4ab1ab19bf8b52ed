/**
 * The OpenAPI description served at /docs (Swagger UI) and /docs/json. Route schemas document the
 * API; the routes validate their own input (with the precise error codes the README lists), so the
 * schemas are not used to validate or to serialise.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export async function installOpenApi(app: FastifyInstance, version: string): Promise<void> {
  app.setValidatorCompiler(() => () => true);
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  await app.register(swagger, {
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
        { name: 'operations', description: 'probes and metrics (no key needed)' },
      ],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}
