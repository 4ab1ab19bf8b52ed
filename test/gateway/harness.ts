/**
 * Starts a real gateway on loopback in either job mode, so every gateway test can run against both:
 * embedded (worker threads, filesystem store) and redis (BullMQ queues, a real queue worker, Redis
 * store), each test gateway with its own Redis key prefix.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/config/config.js';
import { startQueueWorker, type QueueWorkerHandle } from '../../src/workers/queue-worker.js';
import { testRedisUrl } from './redis-server.js';

export type Mode = 'embedded' | 'redis';
export const MODES: Mode[] = ['embedded', 'redis'];

export interface TestGateway {
  app: FastifyInstance;
  base: string;
  dir: string;
  mode: Mode;
  prefix: string;
  redisUrl?: string;
  worker?: QueueWorkerHandle;
  close(): Promise<void>;
}

export async function startGateway(mode: Mode, env: Record<string, string> = {}, options: { worker?: boolean } = {}): Promise<TestGateway> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-gw-'));
  const prefix = `test-${randomBytes(4).toString('hex')}`;
  const redisUrl = mode === 'redis' ? await testRedisUrl() : undefined;
  const config = loadConfig({
    VLMPRESS_DATA_DIR: dir,
    VLMPRESS_WORKER_THREADS: '1',
    LOG_LEVEL: 'silent',
    VLMPRESS_REDIS_PREFIX: prefix,
    VLMPRESS_WORKER_METRICS_PORT: '0',
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
    ...env,
  });
  const worker = redisUrl && options.worker !== false ? await startQueueWorker(config, pino({ level: 'silent' })) : undefined;
  const app = await buildApp({ config });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    base,
    dir,
    mode,
    prefix,
    ...(redisUrl ? { redisUrl } : {}),
    ...(worker ? { worker } : {}),
    async close() {
      await app.close();
      await worker?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `probe` until it returns a value (every 50 ms), or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value of one series on the gateway's /metrics page (`labels` as written there, e.g. `backend="default",outcome="compared"`); 0 when absent. */
export async function metricValue(gw: TestGateway, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const escaped = labels.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${name}\\{${escaped}\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}
