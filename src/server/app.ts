/**
 * The Fastify app factory: one plugin per concern, resources created here and closed on shutdown
 * (`app.close()` drains in-flight requests, then the job runner and the store).
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMetrics } from '../metrics/registry.js';
import { bitstreamRoutes } from '../routes/bitstreams.js';
import { compressRoutes } from '../routes/compress.js';
import { healthRoutes } from '../routes/health.js';
import { FsBitstreamStore } from '../store/fs-store.js';
import type { BitstreamStore } from '../store/bitstream-store.js';
import type { JobRunner } from '../workers/jobs.js';
import { ThreadPoolRunner } from '../workers/thread-pool.js';
import { installAuth } from './auth.js';
import type { GatewayConfig } from './config.js';
import type { GatewayContext, ModelSummary } from './context.js';
import { installErrorHandler } from './errors.js';

export interface AppOptions {
  config: GatewayConfig;
  /** overrides for tests; by default built from the configuration */
  runner?: JobRunner;
  store?: BitstreamStore;
  logger?: boolean | object;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    bodyLimit: config.maxBodyBytes,
  });
  const metrics = createMetrics();
  const runner =
    options.runner ??
    new ThreadPoolRunner({ threads: config.workerThreads, jobTimeoutMs: config.jobTimeoutMs, ortThreads: config.ortThreads, executionProviders: config.executionProviders, maxPixels: config.maxPixels });
  const store = options.store ?? new FsBitstreamStore(config.dataDir);

  // Load the codec in every worker before accepting traffic; a broken model package stops start-up.
  const { models } = await runner.ready();
  const model: ModelSummary = models[0]!;
  for (const m of models) metrics.modelInfo.set({ name: m.name, id: m.id, provider: m.provider }, 1);

  const ctx: GatewayContext = {
    config,
    runner,
    store,
    metrics,
    defaultModel: () => model,
    async readiness() {
      const checks: Record<string, { ok: boolean; detail?: string }> = {};
      try {
        const r = await runner.ready();
        checks['models'] = { ok: true, detail: r.models.map((m) => `${m.name} (${m.provider})`).join(', ') };
      } catch (e) {
        checks['models'] = { ok: false, detail: (e as Error).message };
      }
      return { ready: Object.values(checks).every((c) => c.ok), checks };
    },
  };

  installErrorHandler(app, (code) => metrics.errors.inc({ code }));
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe({ route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  installAuth(app, config.apiKeys);
  for (const type of ['application/vnd.vlmpress', 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) => done(null, body));
  }
  await app.register(multipart, { limits: { fileSize: config.maxBodyBytes, files: 1, fields: 16, fieldSize: 64 * 1024 }, throwFileSizeLimit: true });
  await app.register(async (a) => healthRoutes(a, ctx));
  await app.register(async (a) => compressRoutes(a, ctx));
  await app.register(async (a) => bitstreamRoutes(a, ctx));

  app.addHook('onClose', async () => {
    await runner.close();
    await store.close();
  });
  return app;
}
