/** Which errors the gateway answers as `503 redis_unavailable`: ioredis's ways of saying "no connection". */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRedisConnectionError } from '../../src/infra/redis.js';

describe('Redis connection errors', () => {
  it('are found in a failed transaction’s previousErrors, even when that list refers back to the error itself', () => {
    const closed = new Error('Connection is closed.');
    const exec = Object.assign(new Error('EXECABORT Transaction discarded because of previous errors.'), { previousErrors: [] as Error[] });
    exec.previousErrors.push(exec, closed);
    assert.equal(isRedisConnectionError(exec), true);
    // A cycle without a connection error ends with false instead of overflowing the stack (it did: a 500).
    const loop = Object.assign(new Error('EXECABORT'), { previousErrors: [] as Error[] });
    loop.previousErrors.push(loop);
    assert.equal(isRedisConnectionError(loop), false);
    assert.equal(isRedisConnectionError(new Error('WRONGTYPE Operation against a key')), false);
    assert.equal(isRedisConnectionError(Object.assign(new Error('x'), { name: 'MaxRetriesPerRequestError' })), true);
  });
});
