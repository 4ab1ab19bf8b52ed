/** `npm run worker`: a queue worker process for Redis mode; drains its jobs on SIGINT/SIGTERM. */
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config/config.js';
import { startQueueWorker, WorkerStartError, type QueueWorkerHandle } from './queue-worker.js';

let config;
try {
  config = loadConfig();
} catch (e) {
  if (e instanceof ConfigError) {
    process.stderr.write(`vlmpress worker: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
if (!config.redisUrl) {
  process.stderr.write('vlmpress worker: set REDIS_URL (the worker takes jobs from Redis; without it the gateway runs jobs in-process)\n');
  process.exit(2);
}
const log = pino({ level: config.logLevel, base: { service: 'vlmpress-worker' } });
let worker: QueueWorkerHandle;
try {
  worker = await startQueueWorker(config, log);
} catch (e) {
  if (e instanceof WorkerStartError) {
    process.stderr.write(`vlmpress worker: ${e.message}\n`);
    process.exit(2);
  }
  throw e;
}
let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: finishing active jobs');
  const timer = setTimeout(() => {
    log.error('shutdown took longer than the job timeout, exiting');
    process.exit(1);
  }, config.jobTimeoutMs + 10_000);
  timer.unref();
  await worker.close();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
