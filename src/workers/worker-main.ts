/** `npm run worker`: a queue worker process for Redis mode; drains its jobs on SIGINT/SIGTERM. */
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../config/config.js';
import { drainOnSignals, startOrExit } from '../infra/process.js';
import { startQueueWorker, WorkerStartError } from './queue-worker.js';

const config = await startOrExit('vlmpress worker', () => loadConfig(), [ConfigError]);
if (!config.redisUrl) {
  process.stderr.write('vlmpress worker: set REDIS_URL (the worker takes jobs from Redis; without it the gateway runs jobs in-process)\n');
  process.exit(2);
}
const log = pino({ level: config.logLevel, base: { service: 'vlmpress-worker' } });
const worker = await startOrExit('vlmpress worker', () => startQueueWorker(config, log), [WorkerStartError]);
drainOnSignals(
  async (signal) => {
    log.info({ signal }, 'shutting down: finishing active jobs');
    await worker.close();
  },
  config.jobTimeoutMs + 10_000,
  () => log.error('shutdown took longer than the job timeout, exiting'),
);
