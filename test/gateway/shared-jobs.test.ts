/**
 * Redis mode, two gateways on one Redis: the same new image sent to both at once is encoded by one
 * job (BullMQ deduplication on a hash of the settings and the bytes), both get its bitstream, and the
 * job's image-sized outputs are gone from Redis once the last request collected them. A different
 * image or different settings are not merged.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/config.js';
import { startQueueWorker, type QueueWorkerHandle } from '../../src/workers/queue-worker.js';
import { closeCodecs, readShared } from '../helpers.js';
import { startGateway, waitFor, type TestGateway } from './harness.js';

after(closeCodecs);

describe('identical jobs from two gateways share one run (redis mode)', () => {
  let a: TestGateway;
  let b: TestGateway;
  let worker: QueueWorkerHandle | undefined;
  let redis: Redis;
  let png: Buffer;

  before(async () => {
    // No worker yet: the requests' jobs wait in the queue together, so they are in flight at once.
    a = await startGateway('redis', { VLMPRESS_DECODE_CACHE_MB: '0' }, { worker: false });
    b = await startGateway('redis', { VLMPRESS_REDIS_PREFIX: a.prefix, VLMPRESS_DECODE_CACHE_MB: '0' }, { worker: false });
    redis = new Redis(a.redisUrl!);
    png = await sharp(readShared('data', 'kodak', 'kodim05.png'))
      .extract({ left: 100, top: 100, width: 192, height: 160 })
      .png()
      .toBuffer();
  });
  after(async () => {
    await a.close();
    await b.close();
    await worker?.close();
    redis.disconnect();
  });

  const compress = (gw: TestGateway, quality: number) => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'p.png');
    form.append('quality', String(quality));
    return fetch(`${gw.base}/compress`, { method: 'POST', body: form });
  };
  const encodeJobs = async () => {
    const values = (await worker!.metrics.jobs.get()).values;
    return values.filter((v) => v.labels['queue'] === 'encode').reduce((n, v) => n + v.value, 0);
  };

  it('runs one encode for the same image and settings sent to both gateways at once', async () => {
    const pending = [compress(a, 3), compress(b, 3), compress(a, 3), compress(b, 5)];
    // All four jobs are queued (three of them one job) before any worker runs.
    await waitFor('the jobs to be queued', async () => {
      const waiting = await redis.llen(`${a.prefix}:bull:encode:wait`);
      return waiting >= 2 ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await redis.llen(`${a.prefix}:bull:encode:wait`), 2, 'one job for quality 3, one for quality 5');
    worker = await startQueueWorker(
      loadConfig({ REDIS_URL: a.redisUrl!, VLMPRESS_REDIS_PREFIX: a.prefix, VLMPRESS_WORKER_THREADS: '1', LOG_LEVEL: 'silent' }),
      pino({ level: 'silent' }),
    );
    const answers = await Promise.all(pending);
    for (const r of answers) assert.equal(r.status, 200, await r.clone().text());
    const bodies = (await Promise.all(answers.map((r) => r.json()))) as { id: string; bytes: number }[];
    assert.equal(bodies[0]!.id, bodies[1]!.id);
    assert.equal(bodies[0]!.id, bodies[2]!.id);
    assert.notEqual(bodies[0]!.id, bodies[3]!.id, 'other settings are another job');
    assert.equal(await encodeJobs(), 2);
    // Outputs and waiter counts are deleted by the last request collecting them, inputs by the worker.
    const left = [...(await redis.keys(`${a.prefix}:blob:*`)), ...(await redis.keys(`${a.prefix}:waiters:*`))];
    assert.deepEqual(left, []);
  });

  it('runs a new job for the same work once the earlier one has finished', async () => {
    // Decodes, with the decode cache off: the same bitstream twice in a row is two jobs, each answered
    // in full (a finished job's outputs are deleted, so it must not be joined).
    const id = ((await (await compress(a, 3)).json()) as { id: string }).id;
    const decodeJobs = async () =>
      (await worker!.metrics.jobs.get()).values.filter((v) => v.labels['queue'] === 'decode').reduce((n, v) => n + v.value, 0);
    const before = await decodeJobs();
    const first = Buffer.from(await (await fetch(`${a.base}/bitstreams/${id}/image?format=png`)).arrayBuffer());
    const second = Buffer.from(await (await fetch(`${b.base}/bitstreams/${id}/image?format=png`)).arrayBuffer());
    assert.ok(first.length > 1000);
    assert.deepEqual(second, first);
    assert.equal((await decodeJobs()) - before, 2);
  });
});
