/**
 * The gateway on the S3 store (VLMPRESS_STORE=s3) against a real S3 server (SeaweedFS): bitstreams
 * land in the bucket by content, come back re-hashed, the encode cache works in both job modes,
 * start-up refuses a missing bucket, and credentials the server stops accepting give 503
 * store_unavailable with the reason in the log.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/config/config.js';
import { readShared } from '../helpers.js';
import { startS3Server, type TestS3Server } from '../store/s3-server.js';
import { MODES, startGateway } from './harness.js';

const jpeg = readShared('data', 'imagenet-dev', 'n01440764_tench.JPEG');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function compress(base: string, image: Buffer): Promise<Response> {
  const form = new FormData();
  form.append('image', new Blob([new Uint8Array(image)]), 'image');
  form.append('quality', '3');
  return fetch(`${base}/compress`, { method: 'POST', body: form });
}

describe('gateway on the S3 store', () => {
  let s3: TestS3Server;
  const env = (bucket: string, secret?: string): Record<string, string> => ({
    VLMPRESS_STORE: 's3',
    VLMPRESS_S3_ENDPOINT: s3.endpoint,
    VLMPRESS_S3_BUCKET: bucket,
    VLMPRESS_S3_PREFIX: 'gw/',
    AWS_ACCESS_KEY_ID: s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: secret ?? s3.secretAccessKey,
  });

  before(async () => {
    s3 = await startS3Server();
  });
  after(async () => s3.close());

  for (const mode of MODES)
    it(`stores in the bucket, serves what it stored, and encodes a repeat once (${mode} mode)`, async () => {
      const bucket = `gw-${mode}-${randomBytes(3).toString('hex')}`;
      await s3.createBucket(bucket);
      const gw = await startGateway(mode, env(bucket));
      try {
        const first = (await (await compress(gw.base, jpeg)).json()) as { id: string; bytes: number; cached: boolean };
        assert.equal(first.cached, false);
        const object = await s3.client().send(new GetObjectCommand({ Bucket: bucket, Key: `gw/bitstreams/${first.id}` }));
        const stored = await object.Body!.transformToByteArray();
        assert.equal(sha(stored), first.id, 'the object is the bitstream, under its SHA-256');
        assert.equal(stored.length, first.bytes);
        const served = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${first.id}`)).arrayBuffer());
        assert.equal(sha(served), first.id);
        const again = (await (await compress(gw.base, jpeg)).json()) as { id: string; cached: boolean };
        assert.deepEqual([again.id, again.cached], [first.id, true], 'the encode-cache index found it');
        const image = await fetch(`${gw.base}/bitstreams/${first.id}/image?format=png`);
        assert.equal(image.status, 200);
      } finally {
        await gw.close();
      }
    });

  it('does not start on a missing bucket, and says which', async () => {
    await assert.rejects(
      buildApp({ config: loadConfig({ LOG_LEVEL: 'silent', ...env('no-such-bucket') }) }),
      /bucket "no-such-bucket" does not exist/,
    );
  });

  it('answers 503 store_unavailable when the server stops accepting its credentials, the reason logged', async () => {
    const bucket = `gw-creds-${randomBytes(3).toString('hex')}`;
    await s3.createBucket(bucket);
    let log = '';
    const stream = new Writable({
      write(chunk, _enc, done) {
        log += String(chunk);
        done();
      },
    });
    const app = await buildApp({ config: loadConfig({ VLMPRESS_WORKER_THREADS: '1', ...env(bucket) }), logger: { level: 'warn', stream } });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { id } = (await (await compress(base, jpeg)).json()) as { id: string };
      await s3.kill();
      await s3.restart('a-rotated-secret');
      const res = await fetch(`${base}/bitstreams/${id}`);
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, 503);
      assert.equal(body.error.code, 'store_unavailable');
      assert.ok(res.headers.get('retry-after'));
      assert.match(log, /bitstream store unavailable/);
      assert.match(log, /SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId|403/);
    } finally {
      await app.close();
    }
  });
});
