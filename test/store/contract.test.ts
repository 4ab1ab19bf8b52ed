/**
 * The bitstream-store contract, run on every store against the real thing: the filesystem, a real
 * Redis, and a real S3 server (SeaweedFS) with the cache index in the bucket and in Redis. Then what
 * only S3 has: start-up checks of the bucket and the credentials, and a server that is down.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Redis } from 'ioredis';
import { bitstreamId, StoreUnavailableError, type BitstreamStore, type StoredMeta } from '../../src/store/bitstream-store.js';
import { RedisCacheIndex } from '../../src/store/cache-index.js';
import { FsBitstreamStore } from '../../src/store/fs-store.js';
import { RedisBitstreamStore } from '../../src/store/redis-store.js';
import { openS3Store, type S3StoreSettings } from '../../src/store/s3-store.js';
import { testRedisUrl } from '../gateway/redis-server.js';
import { startS3Server, type TestS3Server } from './s3-server.js';

type Part = 'bitstream' | 'meta' | 'cache';

/** A store under test, with what the contract needs to damage its entries the way a disk or an operator might. */
interface Subject {
  store: BitstreamStore;
  corrupt: Part[];
  damage(id: string, part: 'bitstream' | 'meta'): Promise<void>;
  damageIndex(cacheKey: string): Promise<void>;
  close(): Promise<void>;
}

const meta = (n: number): StoredMeta => ({
  width: 64 + n,
  height: 48,
  quality: 4,
  model: { name: 'm', id: 'a'.repeat(64) },
  source: { format: 'jpeg', width: 640, height: 480, bytes: 12_345 },
  createdAt: new Date(1_700_000_000_000 + n).toISOString(),
});
const key = () => randomBytes(32).toString('hex');

function contract(name: string, make: () => Promise<Subject>): void {
  describe(`store contract: ${name}`, () => {
    let s: Subject;
    before(async () => {
      s = await make();
    });
    after(async () => s.close());

    it('stores by content: the id is the SHA-256, the bytes and metadata come back as stored', async () => {
      const bytes = randomBytes(5000);
      const id = await s.store.put(bytes, meta(1));
      assert.equal(id, bitstreamId(bytes));
      const got = await s.store.get(id);
      assert.deepEqual(Buffer.from(got!.bitstream), bytes);
      assert.deepEqual(got!.meta, meta(1));
    });

    it('keeps the first metadata when the same bytes come again, also from many writers at once', async () => {
      const bytes = randomBytes(3000);
      const first = await s.store.put(bytes, meta(2));
      const ids = await Promise.all([3, 4, 5, 6].map((n) => s.store.put(bytes, meta(n))));
      assert.deepEqual(ids, [first, first, first, first]);
      assert.deepEqual((await s.store.get(first))!.meta, meta(2));
    });

    it('answers null for an unknown id and for anything that is not an id', async () => {
      assert.equal(await s.store.get(key()), null);
      for (const bad of ['', 'x', '../etc/passwd', 'A'.repeat(64), `${key()}/..`]) assert.equal(await s.store.get(bad), null, bad);
    });

    it('remembers cache keys; unknown and malformed keys are misses', async () => {
      const id = await s.store.put(randomBytes(100), meta(7));
      const k = key();
      assert.equal(await s.store.lookup(k), null);
      await s.store.remember(k, id);
      assert.equal(await s.store.lookup(k), id);
      assert.equal(await s.store.lookup('not-a-key'), null);
    });

    for (const part of ['bitstream', 'meta'] as const)
      it(`never serves a damaged ${part}: counted, removed, a miss; the next put stores it again`, async () => {
        const bytes = randomBytes(2000);
        const id = await s.store.put(bytes, meta(8));
        await s.damage(id, part);
        const before = s.corrupt.length;
        assert.equal(await s.store.get(id), null);
        assert.deepEqual(s.corrupt.slice(before), [part]);
        assert.equal(await s.store.get(id), null, 'removed: a second read is a plain miss');
        assert.equal(s.corrupt.length, before + 1);
        await s.store.put(bytes, meta(9));
        assert.deepEqual(Buffer.from((await s.store.get(id))!.bitstream), bytes);
      });

    it('counts a cache entry that does not hold an id, and misses', async () => {
      const k = key();
      await s.damageIndex(k);
      const before = s.corrupt.length;
      assert.equal(await s.store.lookup(k), null);
      assert.deepEqual(s.corrupt.slice(before), ['cache']);
    });
  });
}

contract('filesystem', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-store-'));
  const corrupt: Part[] = [];
  const store = new FsBitstreamStore(dir, (p) => corrupt.push(p));
  const file = (id: string, ext: string) => path.join(dir, 'bitstreams', id.slice(0, 2), `${id}.${ext}`);
  return {
    store,
    corrupt,
    damage: (id, part) => writeFile(file(id, part === 'bitstream' ? 'vlmp' : 'json'), part === 'bitstream' ? 'garbage' : '{broken'),
    damageIndex: async (k) => {
      await store.remember(k, 'a'.repeat(64));
      await writeFile(path.join(dir, 'cache', k.slice(0, 2), k), 'not an id');
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

contract('Redis', async () => {
  const redis = new Redis(await testRedisUrl());
  const prefix = `store-test-${randomBytes(4).toString('hex')}`;
  const corrupt: Part[] = [];
  return {
    store: new RedisBitstreamStore(redis, prefix, 600, (p) => corrupt.push(p)),
    corrupt,
    damage: async (id, part) => {
      await redis.hset(`${prefix}:bitstream:${id}`, part === 'bitstream' ? 'data' : 'meta', part === 'bitstream' ? 'garbage' : '{broken');
    },
    damageIndex: async (k) => {
      await redis.set(`${prefix}:cache:${k}`, 'not an id');
    },
    close: async () => {
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  };
});

let server: TestS3Server | undefined;
const s3Server = async () => (server ??= await startS3Server());
after(async () => server?.close());

async function s3Subject(withRedis: boolean): Promise<Subject> {
  const srv = await s3Server();
  const bucket = `contract-${randomBytes(4).toString('hex')}`;
  await srv.createBucket(bucket);
  const settings: S3StoreSettings = {
    endpoint: srv.endpoint,
    region: 'us-east-1',
    bucket,
    prefix: 'vlmpress/',
    forcePathStyle: true,
    credentials: { accessKeyId: srv.accessKeyId, secretAccessKey: srv.secretAccessKey },
  };
  const corrupt: Part[] = [];
  const redis = withRedis ? new Redis(await testRedisUrl()) : undefined;
  const prefix = `store-test-${randomBytes(4).toString('hex')}`;
  const index = redis ? new RedisCacheIndex(redis, prefix, 600, (p) => corrupt.push(p)) : undefined;
  const store = await openS3Store(settings, index, (p) => corrupt.push(p));
  const client: S3Client = srv.client();
  const put = (Key: string, Body: string, Metadata?: Record<string, string>) =>
    client.send(new PutObjectCommand({ Bucket: bucket, Key, Body, ...(Metadata ? { Metadata } : {}) }));
  return {
    store,
    corrupt,
    damage: async (id, part) => {
      // Another writer (or bit rot) left other bytes, or unreadable metadata, under the id.
      if (part === 'bitstream') await put(`vlmpress/bitstreams/${id}`, 'garbage', { 'vlmpress-meta': 'e30' });
      else {
        const stored = await store.get(id);
        await client.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: `vlmpress/bitstreams/${id}`,
            Body: stored!.bitstream,
            Metadata: { 'vlmpress-meta': '!!' },
          }),
        );
      }
    },
    damageIndex: async (k) => {
      if (redis) await redis.set(`${prefix}:cache:${k}`, 'not an id');
      else await put(`vlmpress/cache/${k}`, 'not an id');
    },
    close: async () => {
      client.destroy();
      await store.close();
      redis?.disconnect();
    },
  };
}

contract('S3 (SeaweedFS), cache index in the bucket', () => s3Subject(false));
contract('S3 (SeaweedFS), cache index in Redis', () => s3Subject(true));

describe('S3 store: start-up and outages', () => {
  const settings = async (over: Partial<S3StoreSettings> = {}): Promise<S3StoreSettings> => {
    const srv = await s3Server();
    return {
      endpoint: srv.endpoint,
      region: 'us-east-1',
      bucket: 'never-created',
      prefix: 'p/',
      forcePathStyle: true,
      credentials: { accessKeyId: srv.accessKeyId, secretAccessKey: srv.secretAccessKey },
      maxAttempts: 2,
      ...over,
    };
  };

  it('refuses to start on a missing bucket, saying which', async () => {
    await assert.rejects(openS3Store(await settings()), /bucket "never-created" does not exist/);
  });

  it('refuses to start with credentials the server does not know', async () => {
    const srv = await s3Server();
    const bucket = `creds-${randomBytes(4).toString('hex')}`;
    await srv.createBucket(bucket);
    await assert.rejects(
      openS3Store(await settings({ bucket, credentials: { accessKeyId: 'nobody', secretAccessKey: 'wrong' } })),
      /access to bucket .* is refused: check the credentials/,
    );
  });

  it('gives StoreUnavailableError, with the reason, when the server does not answer', async () => {
    const srv = await s3Server();
    const bucket = `down-${randomBytes(4).toString('hex')}`;
    await srv.createBucket(bucket);
    const store = await openS3Store(await settings({ bucket, connectTimeoutMs: 500, requestTimeoutMs: 2000 }));
    const id = await store.put(randomBytes(500), meta(1));
    await srv.kill();
    try {
      for (const op of [() => store.get(id), () => store.put(randomBytes(10), meta(2)), () => store.lookup(key())])
        await assert.rejects(op(), (e: unknown) => e instanceof StoreUnavailableError && /object store is unavailable/.test(e.message));
    } finally {
      await srv.restart();
    }
    assert.ok(await store.get(id), 'back after the restart, with what it had');
    await store.close();
  });
});
