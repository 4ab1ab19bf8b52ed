import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Codec, CodecError } from '../../src/codec/index.js';
import { bitstreamCase, imageCase } from '../fuzz/cases.js';
import { fuzzSeeds } from '../fuzz/seeds.js';

const BITSTREAM_CASES = 5000;
const IMAGE_CASES = 1000;
const SEED = 20261125;

let codec: Codec | undefined;
after(async () => codec?.close());

/** Run one case; return the error code, 'ok', or fail the test on any other exception. */
async function outcome(run: () => Promise<unknown>, label: string): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (e) {
    if (e instanceof CodecError) return e.code;
    assert.fail(`${label}: untyped failure ${(e as Error).stack ?? String(e)}`);
  }
}

describe('fuzz', { timeout: 600_000 }, () => {
  it(`${BITSTREAM_CASES} mutated, truncated and random bitstreams give typed errors or images`, async (t) => {
    codec = await Codec.load({ maxPixels: 1_000_000 });
    const { bitstreams } = await fuzzSeeds(codec);
    const counts: Record<string, number> = {};
    for (let i = 0; i < BITSTREAM_CASES; i++) {
      const c = bitstreamCase(bitstreams, SEED, i);
      const r = await outcome(async () => {
        const img = await codec!.decode(c.data);
        assert.equal(img.data.length, img.width * img.height * 3);
      }, `bitstream case ${i} (${c.kind})`);
      counts[r] = (counts[r] ?? 0) + 1;
    }
    t.diagnostic(`outcomes: ${JSON.stringify(counts)}`);
    // Every class of damage is reached, and the checksum catches what it should.
    for (const code of ['corrupt_payload', 'truncated', 'bad_magic'])
      assert.ok((counts[code] ?? 0) > 0, `${code} reached: ${JSON.stringify(counts)}`);
    assert.ok((counts['ok'] ?? 0) > 0, 'some checksum-fixed payload damage still decodes to an image');
  });

  it(`${IMAGE_CASES} mutated images give typed errors or encode`, async (t) => {
    codec ??= await Codec.load({ maxPixels: 1_000_000 });
    const { images } = await fuzzSeeds(codec);
    const counts: Record<string, number> = {};
    for (let i = 0; i < IMAGE_CASES; i++) {
      const c = imageCase(images, SEED, i);
      const r = await outcome(async () => {
        const enc = await codec!.encodeFile(c.data, { quality: 1 + (i % 8) });
        await codec!.decode(enc.bitstream);
      }, `image case ${i} (${c.kind})`);
      counts[r] = (counts[r] ?? 0) + 1;
    }
    t.diagnostic(`outcomes: ${JSON.stringify(counts)}`);
    assert.ok((counts['bad_image'] ?? 0) > 0 && (counts['ok'] ?? 0) > 0, JSON.stringify(counts));
  });
});
