/**
 * The encode-cache index: cache key (input hash and settings) -> bitstream id. Small and hot, so the
 * Redis store and the S3 store with REDIS_URL keep it in Redis, with the store's TTL; the S3 store
 * without Redis keeps it in its bucket (s3-store.ts).
 */
import type { Redis } from 'ioredis';
import { ID_PATTERN, type CorruptEntryListener } from './bitstream-store.js';

export interface CacheIndex {
  lookup(cacheKey: string): Promise<string | null>;
  remember(cacheKey: string, id: string): Promise<void>;
}

/** A value read back from an index: an id, or null (counted) when it is not one. */
export function indexedId(value: string | null, onCorrupt: CorruptEntryListener): string | null {
  if (value === null) return null;
  if (ID_PATTERN.test(value)) return value;
  onCorrupt('cache');
  return null;
}

export class RedisCacheIndex implements CacheIndex {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** seconds; 0 keeps entries forever */
    private readonly ttlSeconds: number,
    private readonly onCorrupt: CorruptEntryListener = () => {},
  ) {}

  private key(cacheKey: string): string {
    return `${this.prefix}:cache:${cacheKey}`;
  }

  async lookup(cacheKey: string): Promise<string | null> {
    if (!ID_PATTERN.test(cacheKey)) return null;
    return indexedId(await this.redis.get(this.key(cacheKey)), this.onCorrupt);
  }

  async remember(cacheKey: string, id: string): Promise<void> {
    if (this.ttlSeconds > 0) await this.redis.set(this.key(cacheKey), id, 'EX', this.ttlSeconds);
    else await this.redis.set(this.key(cacheKey), id);
  }
}
