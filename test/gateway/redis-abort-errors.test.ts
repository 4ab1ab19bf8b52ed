/** A pipeline cut off by Redis going away is a connection error too (the chaos suite met it as a 500). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRedisConnectionError } from '../../src/infra/redis.js';

/** ioredis's AbortError (from redis-errors, not a direct dependency): an Error named AbortError. */
class AbortError extends Error {
  override name = 'AbortError';
}

describe('Redis connection errors of aborted pipelines', () => {
  it('answer 503 redis_unavailable, alone or behind a failed transaction', () => {
    // What ioredis rejects pipelined commands with when the socket closes under them.
    const aborted = new AbortError('Command aborted due to connection close');
    assert.equal(isRedisConnectionError(aborted), true);
    const exec = Object.assign(new AbortError('Command aborted due to connection close'), {
      previousErrors: [new AbortError('Command aborted due to connection close')],
    });
    assert.equal(isRedisConnectionError(exec), true);
    // An abort for another reason is not a lost connection.
    assert.equal(isRedisConnectionError(new AbortError('Command aborted by the caller')), false);
  });
});
