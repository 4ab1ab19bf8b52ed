/**
 * The Fastify app factory: one plugin per concern, resources created here and closed on shutdown
 * (`app.close()` drains in-flight requests, then the job runner and the store).
 */
import multipart from '@fastify/multipart';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createMetrics } from '../metrics/registry.js';
import { jobWorkObserver } from '../workers/job-observer.js';
import { bitstreamRoutes } from '../routes/bitstreams.js';
import { compressRoutes } from '../routes/compress.js';
import { healthRoutes } from '../routes/health.js';
import { policyRoutes } from '../routes/policy.js';
import { uiRoutes } from '../routes/ui.js';
import { FsBitstreamStore } from '../store/fs-store.js';
import type { BitstreamStore, CorruptEntryListener } from '../store/bitstream-store.js';
import { RedisCacheIndex } from '../store/cache-index.js';
import { openS3Store } from '../store/s3-store.js';
import type { JobRunner } from '../workers/jobs.js';
import { AdmissionLimitedRunner } from '../workers/admission.js';
import { QueueRunner } from '../workers/queue-runner.js';
import { ThreadPoolRunner } from '../workers/thread-pool.js';
import { backendsFrom } from '../lvlm-proxy/backends.js';
import { proxyRoutes } from '../routes/proxy.js';
import { anthropicRoutes } from '../routes/anthropic.js';
import { geminiRoutes } from '../routes/gemini.js';
import { RedisBitstreamStore } from '../store/redis-store.js';
import { connectRedis } from '../infra/redis.js';
import type { Redis } from 'ioredis';
import { avifencAvailable, describeEditors, findModelDirs, isCodecChoice, qualityScale } from '../codec/index.js';
import { readManifest } from '../codec/model-package.js';
import { loadPolicyTable, PolicyTableError, tableWithoutScreen, type PolicyTable } from '../policy/policy-table.js';
import path from 'node:path';
import { installOpenApi } from './openapi.js';
import { PACKAGE_VERSION } from './version.js';
import { installAuth } from './auth.js';
import type { GatewayConfig } from '../config/config.js';
import type { GatewayContext, ModelSummary } from '../pipeline/context.js';
import { DecodeCache } from '../pipeline/decode-cache.js';
import { installErrorHandler } from './errors.js';
import { FileEvidence, RedisEvidence } from '../shadow/evidence.js';
import { ShadowRunner } from '../shadow/shadow.js';

export interface AppOptions {
  config: GatewayConfig;
  /** overrides for tests; by default built from the configuration */
  runner?: JobRunner;
  store?: BitstreamStore;
  logger?: boolean | object;
}

/** VLMPRESS_POLICY_FILE, else the policy table shipped beside the default model package, if any. */
async function loadDefaultPolicy(config: GatewayConfig, modelId: string): Promise<PolicyTable | null> {
  if (config.policyFile === 'none') return null;
  if (config.policyFile) {
    const table = await loadPolicyTable(config.policyFile, modelId);
    if (!table) throw new PolicyTableError(`VLMPRESS_POLICY_FILE ${config.policyFile} does not exist`);
    return table;
  }
  for (const dir of await findModelDirs()) {
    if ((await readManifest(dir)).id === modelId) return loadPolicyTable(path.join(dir, 'policy.json'), modelId);
  }
  return null;
}

/** The configured bitstream store (the S3 one checks its bucket first). */
async function openStore(config: GatewayConfig, redis: Redis | undefined, onCorrupt: CorruptEntryListener): Promise<BitstreamStore> {
  if (config.store === 's3')
    return openS3Store(
      config.s3!,
      redis ? new RedisCacheIndex(redis, config.redisPrefix, config.storeTtlSeconds, onCorrupt) : undefined,
      onCorrupt,
    );
  if (config.store === 'redis' && redis) return new RedisBitstreamStore(redis, config.redisPrefix, config.storeTtlSeconds, onCorrupt);
  return new FsBitstreamStore(config.dataDir, onCorrupt);
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { config } = options;
  const app = Fastify({
    logger: options.logger ?? {
      level: config.logLevel,
      // Gemini clients may send their key as ?key=: it must not reach the logs.
      serializers: {
        req: (req: FastifyRequest) => ({
          method: req.method,
          url: req.url.replace(/([?&]key=)[^&]*/gi, '$1***'),
          host: req.host,
          remoteAddress: req.ip,
          remotePort: req.socket?.remotePort,
        }),
      },
    },
    bodyLimit: config.maxBodyBytes,
    // Schemas check requests and never change them: no type coercion, nothing removed, so the proxy
    // forwards exactly the body it was sent.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allowUnionTypes: true } },
  });
  const metrics = createMetrics();
  // Redis mode: jobs go to queue workers and (by default) bitstreams to Redis; embedded mode: threads and files.
  const redis = config.redisUrl ? await connectRedis({ url: config.redisUrl, name: 'vlmpress-gateway' }) : undefined;
  const driver =
    options.runner ??
    (redis && config.redisUrl
      ? new QueueRunner({
          redis,
          redisUrl: config.redisUrl,
          prefix: config.redisPrefix,
          jobTimeoutMs: config.jobTimeoutMs,
          attempts: config.jobAttempts,
          backoffMs: config.jobBackoffMs,
          deadlines: config.jobDeadlines,
          onExpired: (queue) => metrics.jobsExpired.inc({ queue, stage: 'queued' }),
        })
      : new ThreadPoolRunner({
          threads: config.workerThreads,
          jobTimeoutMs: config.jobTimeoutMs,
          ortThreads: config.ortThreads,
          executionProviders: config.executionProviders,
          maxPixels: config.maxPixels,
          maxDecodePixels: config.maxDecodePixels,
          avifenc: config.avifenc,
          deadlines: config.jobDeadlines,
          observer: jobWorkObserver(metrics, () => metrics.jobsAbandoned.inc()),
        }));
  const runner = new AdmissionLimitedRunner(driver, config.maxPendingJobs);
  const onCorrupt = (part: 'bitstream' | 'meta' | 'cache') => metrics.storeCorrupt.inc({ part });
  const store =
    options.store ??
    (await openStore(config, redis, onCorrupt).catch(async (e: unknown) => {
      // A store that cannot start (no bucket, refused credentials) stops start-up; leave nothing open.
      await driver.close();
      await redis?.quit();
      throw e;
    }));
  const backends = backendsFrom(config);

  // Load the codec in every worker before accepting traffic; a broken model package stops start-up.
  const { models } = await runner.ready();
  const model: ModelSummary = models[0]!;
  for (const m of models) metrics.modelInfo.set({ name: m.name, id: m.id, provider: m.provider }, 1);
  let policyTable = await loadDefaultPolicy(config, model.id);
  // Text's measured best encoder (avif-screen) is an external command: without it, the table's second choice.
  if (policyTable && !(await avifencAvailable(config.avifenc))) {
    app.log.warn({ avifenc: config.avifenc }, 'avifenc not found: text uses the policy choice without avif-screen');
    policyTable = tableWithoutScreen(policyTable);
  }
  const defaultEditor = (await describeEditors())[0] ?? null;

  const decodeCache = new DecodeCache(config.decodeCacheBytes, {
    outcome: (outcome) => metrics.decodeCache.inc({ outcome }),
    bytes: (bytes) => metrics.decodeCacheBytes.set(bytes),
  });
  // Shadow verdict counts are shared by every gateway through Redis; embedded, kept in the data folder.
  const evidence = redis ? new RedisEvidence(redis, config.redisPrefix) : new FileEvidence(config.dataDir);
  const shadow = new ShadowRunner(config, metrics, evidence, app.log, (codec) =>
    isCodecChoice(codec) ? qualityScale(codec, { levels: model.levels, default: model.defaultQuality }).ladder : [],
  );
  const ctx: GatewayContext = {
    config,
    runner,
    store,
    metrics,
    shadow,
    decodeCache,
    encodesInFlight: new Map(),
    defaultModel: () => model,
    defaultEditor,
    backends,
    policyTable,
    targets: policyTable?.targets ?? ['0.95', '0.98', '0.99', 'agreement:0.95', 'agreement:0.98', 'agreement:0.99'],
    async readiness() {
      const checks = await runner.health();
      checks['store'] = { ok: true, detail: store.kind };
      return { ready: Object.values(checks).every((c) => c.ok), mode: runner.mode, checks };
    },
  };

  installErrorHandler(app, (code) => metrics.errors.inc({ code }));
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe(
      { route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });
  installAuth(app, config.apiKeys);
  await installOpenApi(app, PACKAGE_VERSION);
  for (const type of ['application/vnd.vlmpress', 'application/octet-stream']) {
    app.addContentTypeParser(type, { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) => done(null, body));
  }
  await app.register(multipart, {
    limits: { fileSize: config.maxBodyBytes, files: 1, fields: 16, fieldSize: 64 * 1024 },
    throwFileSizeLimit: true,
  });
  await app.register(async (a) => healthRoutes(a, ctx));
  await app.register(async (a) => compressRoutes(a, ctx));
  await app.register(async (a) => bitstreamRoutes(a, ctx));
  await app.register(async (a) => proxyRoutes(a, ctx));
  await app.register(async (a) => anthropicRoutes(a, ctx));
  await app.register(async (a) => geminiRoutes(a, ctx));
  await app.register(async (a) => policyRoutes(a, ctx));
  await app.register(async (a) => uiRoutes(a));

  // Requests in flight at shutdown still finish, but their connections close after the response
  // instead of idling through the keep-alive timeout, so draining takes as long as the work.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onClose', async () => {
    await shadow.close();
    await runner.close();
    await store.close();
    await redis?.quit().catch(() => redis.disconnect());
  });
  return app;
}
