/** One way to open a Redis connection: fail fast at start-up with a clear message, reconnect after. */
import { Redis } from 'ioredis';

export interface RedisTarget {
  url: string;
  /** shown in CLIENT LIST, so operators can tell gateways from workers */
  name: string;
}

export const REDIS_COMMAND_TIMEOUT_MS = 5_000;

export async function connectRedis(target: RedisTarget): Promise<Redis> {
  const redis = new Redis(target.url, {
    connectionName: target.name,
    lazyConnect: true,
    // While Redis is away a command fails at once (the request gets 503 redis_unavailable) instead of
    // waiting in an offline queue; one that Redis does not answer fails after commandTimeout.
    enableOfflineQueue: false,
    commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: reconnectDelay,
  });
  // ioredis reports connection errors as events; they are handled by the retry strategy and the
  // failing commands, so swallowing the event only keeps the process from crashing on it.
  redis.on('error', () => {});
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw new Error(`cannot connect to Redis at ${redactUrl(target.url)}: ${(e as Error).message}`, { cause: e });
  }
  return redis;
}

/** Reconnect every second at most: BullMQ's own default backs off to 20 s, which kept a gateway's
 * queues away for that long after a short Redis outage. */
const reconnectDelay = (times: number): number => Math.min(times * 200, 1000);

/** BullMQ connection options for the same URL (its workers need maxRetriesPerRequest: null). */
export function bullConnection(
  url: string,
  name: string,
): { url: string; connectionName: string; maxRetriesPerRequest: null; retryStrategy: (times: number) => number } {
  return { url, connectionName: name, maxRetriesPerRequest: null, retryStrategy: reconnectDelay };
}

/**
 * A BullMQ producer's connection (the gateway's queues): adding a job while Redis is away fails at
 * once. Workers and queue events keep bullConnection: their blocking reads must wait and reconnect.
 */
export function bullProducerConnection(url: string, name: string): ReturnType<typeof bullConnection> & { enableOfflineQueue: false } {
  return { ...bullConnection(url, name), enableOfflineQueue: false };
}

/** ioredis's ways of saying "no connection": an offline command, a closed socket or one closed under a
 * pipeline, no answer in time. */
export function isRedisConnectionError(e: unknown, seen = new Set<unknown>()): boolean {
  if (!(e instanceof Error) || seen.has(e)) return false;
  seen.add(e);
  // A transaction that failed because its commands could not be sent says so only in previousErrors,
  // which may list the transaction's own error again (a 500 of the chaos suite: the recursion never ended).
  const previous = (e as { previousErrors?: unknown[] }).previousErrors;
  if (Array.isArray(previous) && previous.some((p) => isRedisConnectionError(p, seen))) return true;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    // LOADING: a restarted Redis still reading its append-only file; "Command aborted": a pipeline or
    // transaction cut off by the connection closing (a 500 of the chaos suite's Redis SIGKILL)
    /Stream isn't writeable|enableOfflineQueue|Connection is closed|Command timed out|Command aborted due to connection close|^LOADING /.test(
      e.message,
    )
  );
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
