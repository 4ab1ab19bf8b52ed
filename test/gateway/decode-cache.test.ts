/** The proxy's reconstruction cache: byte bound, least-recently-used order, shared decodes, no cached failures. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DecodeCache, type DecodeCacheOutcome } from '../../src/pipeline/decode-cache.js';
import type { DecodeJobResult } from '../../src/workers/jobs.js';

const result = (bytes: number, tag = 0): DecodeJobResult => ({
  image: new Uint8Array(bytes).fill(tag),
  format: 'png',
  width: 1,
  height: 1,
  quality: 4,
  model: { name: 'm', id: 'x' },
  timings: { decodeMs: 1 },
});

function counted(maxBytes: number) {
  const outcomes: DecodeCacheOutcome[] = [];
  const sizes: number[] = [];
  const cache = new DecodeCache(maxBytes, { outcome: (o) => outcomes.push(o), bytes: (b) => sizes.push(b) });
  return { cache, outcomes, sizes };
}

describe('decode cache', () => {
  it('keys by bitstream content and format', () => {
    const a = DecodeCache.key(new Uint8Array([1, 2, 3]), 'png');
    assert.equal(a, DecodeCache.key(Uint8Array.from([1, 2, 3]), 'png'));
    assert.notEqual(a, DecodeCache.key(new Uint8Array([1, 2, 4]), 'png'));
    assert.notEqual(a, DecodeCache.key(new Uint8Array([1, 2, 3]), 'webp'));
  });

  it('answers a repeated key without decoding and evicts the least recently used beyond its byte bound', async () => {
    const { cache, outcomes, sizes } = counted(3 * (1000 + 512));
    let decodes = 0;
    const decode = (tag: number) => async () => (decodes++, result(1000, tag));
    await cache.get('a', decode(1));
    await cache.get('b', decode(2));
    await cache.get('c', decode(3));
    assert.equal((await cache.get('a', decode(9))).image[0], 1, 'a hit returns the kept reconstruction');
    assert.equal(decodes, 3);
    await cache.get('d', decode(4)); // over the bound: b is the least recently used now
    assert.equal(cache.size, 3);
    assert.ok(cache.bytes <= 3 * 1512);
    await cache.get('a', decode(9));
    await cache.get('c', decode(9));
    assert.equal(decodes, 4);
    await cache.get('b', decode(2));
    assert.equal(decodes, 5, 'b was evicted');
    assert.deepEqual(outcomes, ['miss', 'miss', 'miss', 'hit', 'miss', 'hit', 'hit', 'miss']);
    assert.equal(sizes.at(-1), cache.bytes);
  });

  it('shares a decode in flight and does not keep failures or entries larger than the bound', async () => {
    const { cache, outcomes } = counted(4096);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let decodes = 0;
    const slow = async () => {
      decodes++;
      await gate;
      return result(100);
    };
    const both = Promise.all([cache.get('k', slow), cache.get('k', slow)]);
    release();
    const [x, y] = await both;
    assert.equal(x, y);
    assert.equal(decodes, 1);
    assert.deepEqual(outcomes, ['miss', 'shared']);

    await assert.rejects(
      cache.get('bad', async () => Promise.reject(new Error('corrupt'))),
      /corrupt/,
    );
    let retried = false;
    await cache.get('bad', async () => ((retried = true), result(10)));
    assert.ok(retried, 'a failed decode is tried again');

    await cache.get('huge', async () => result(10_000));
    assert.equal(cache.bytes <= 4096, true);
    let again = false;
    await cache.get('huge', async () => ((again = true), result(10_000)));
    assert.ok(again, 'an entry larger than the whole cache is not kept');
  });

  it('keeps nothing with a zero bound but still shares decodes in flight', async () => {
    const { cache, outcomes } = counted(0);
    const one = async () => result(10);
    await Promise.all([cache.get('k', one), cache.get('k', one)]);
    await cache.get('k', one);
    assert.deepEqual(outcomes, ['miss', 'shared', 'miss']);
    assert.equal(cache.size, 0);
  });
});
