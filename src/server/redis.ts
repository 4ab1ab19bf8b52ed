/** One way to open a Redis connection: fail fast at start-up with a clear message, reconnect after. */
import { Redis } from 'ioredis';

export interface RedisTarget {
  url: string;
  /** shown in CLIENT LIST, so operators can tell gateways from workers */
  name: string;
}

export async function connectRedis(target: RedisTarget): Promise<Redis> {
  const redis = new Redis(target.url, {
    connectionName: target.name,
    lazyConnect: true,
    // A request issued while Redis is away fails after a few retries instead of hanging the HTTP request.
    maxRetriesPerRequest: 3,
    retryStrategy: (times) => Math.min(times * 200, 2000),
  });
  // ioredis reports connection errors as events; they are handled by the retry strategy and the
  // failing commands, so swallowing the event only keeps the process from crashing on it.
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redactUrl(target.url)}: ${(e as Error).message}`);
  }
  return redis;
}

/** BullMQ connection options for the same URL (its workers need maxRetriesPerRequest: null). */
export function bullConnection(url: string, name: string): { url: string; connectionName: string; maxRetriesPerRequest: null } {
  return { url, connectionName: name, maxRetriesPerRequest: null };
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
