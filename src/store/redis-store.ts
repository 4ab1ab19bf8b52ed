/**
 * Redis bitstream store (the default with REDIS_URL, so every gateway replica sees the same
 * bitstreams): one hash per bitstream (`data`, `meta`) and one string per cache key, both with the
 * configured TTL. Content addressing makes writes idempotent; reads re-hash the bytes, so a damaged
 * value is never served: it is counted, deleted and reported as a miss, and the next put rewrites it.
 */
import type { Redis } from 'ioredis';
import {
  bitstreamId,
  ID_PATTERN,
  parseStoredMeta,
  type BitstreamStore,
  type CorruptEntryListener,
  type StoredMeta,
} from './bitstream-store.js';
import { RedisCacheIndex } from './cache-index.js';

export class RedisBitstreamStore implements BitstreamStore {
  readonly kind = 'redis' as const;
  private readonly index: RedisCacheIndex;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** seconds; 0 keeps values forever */
    private readonly ttlSeconds: number,
    private readonly onCorrupt: CorruptEntryListener = () => {},
  ) {
    this.index = new RedisCacheIndex(redis, prefix, ttlSeconds, onCorrupt);
  }

  private key(kind: 'bitstream', id: string): string {
    return `${this.prefix}:${kind}:${id}`;
  }

  async put(bitstream: Uint8Array, meta: StoredMeta): Promise<string> {
    const id = bitstreamId(bitstream);
    const key = this.key('bitstream', id);
    // HSETNX: a second put of the same bytes keeps the first metadata (its createdAt) and only refreshes the TTL.
    const tx = this.redis.multi().hsetnx(key, 'data', Buffer.from(bitstream)).hsetnx(key, 'meta', JSON.stringify(meta));
    if (this.ttlSeconds > 0) tx.expire(key, this.ttlSeconds);
    const results = await tx.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
    return id;
  }

  async get(id: string): Promise<{ bitstream: Uint8Array; meta: StoredMeta } | null> {
    if (!ID_PATTERN.test(id)) return null;
    const [data, meta] = await this.redis.hmgetBuffer(this.key('bitstream', id), 'data', 'meta');
    if (!data) return null;
    const parsed = meta ? parseStoredMeta(meta) : null;
    if (bitstreamId(data) !== id || !parsed) {
      this.onCorrupt(bitstreamId(data) !== id ? 'bitstream' : 'meta');
      await this.redis.del(this.key('bitstream', id));
      return null;
    }
    return { bitstream: new Uint8Array(data), meta: parsed };
  }

  lookup(cacheKey: string): Promise<string | null> {
    return this.index.lookup(cacheKey);
  }

  remember(cacheKey: string, id: string): Promise<void> {
    return this.index.remember(cacheKey, id);
  }

  async close(): Promise<void> {}
}
