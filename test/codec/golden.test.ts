import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { GraphOptimizationLevel } from '../../src/codec/index.js';
import type { GoldenEntry } from '../fixtures/make-goldens.js';
import { closeCodecs, FIXTURES, sha256, sharedCodec } from '../helpers.js';

const dir = path.join(FIXTURES, 'golden');
const golden = JSON.parse(readFileSync(path.join(dir, 'golden.json'), 'utf8')) as { model: { id: string }; entries: GoldenEntry[] };

after(closeCodecs);

describe('golden bitstreams', () => {
  it('are made by the shipped model', async () => {
    const codec = await sharedCodec();
    assert.equal(codec.defaultModel.id, golden.model.id);
  });

  // Every configuration must reproduce the committed pixels bit for bit.
  const configs: { threads: number; level: GraphOptimizationLevel }[] = [
    { threads: 1, level: 'all' },
    { threads: 2, level: 'all' },
    { threads: 4, level: 'disabled' },
    { threads: 1, level: 'basic' },
    { threads: 2, level: 'extended' },
  ];
  for (const { threads, level } of configs) {
    it(`decode to the committed pixels with ${threads} thread(s), optimisation ${level}`, async () => {
      const codec = await sharedCodec({ session: { intraOpThreads: threads, graphOptimizationLevel: level } });
      for (const e of golden.entries) {
        const bitstream = readFileSync(path.join(dir, e.file));
        assert.equal(sha256(bitstream), e.bitstreamSha256, `${e.file} itself is intact`);
        const info = codec.inspect(bitstream);
        assert.deepEqual([info.width, info.height, info.quality, info.bytes], [e.width, e.height, e.quality, e.bytes]);
        const img = await codec.decode(bitstream);
        assert.equal(sha256(img.data), e.pixelsSha256, `${e.file} pixels (${threads} threads, ${level})`);
      }
    });
  }
});
