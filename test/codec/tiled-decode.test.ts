import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CodecError, WorkStoppedError } from '../../src/codec/index.js';
import { parseContainer, serialiseContainer } from '../../src/codec/container.js';
import { closeCodecs, rgbCrop, sha256, sharedCodec, sharedFile } from '../helpers.js';

after(closeCodecs);

describe('tiled learned decoding', () => {
  // Tiles of 8 latents (128 px) cut a Kodak photo into many tiles with ragged right and bottom
  // edges; every pixel must equal the one-run decode, at a low and a high quality.
  for (const [crop, quality] of [
    [[0, 0, 768, 512], 2],
    [[13, 7, 601, 389], 7],
  ] as const) {
    it(`gives the one-run pixels for a ${crop[2]}x${crop[3]} photo at quality ${quality}`, async () => {
      const whole = await sharedCodec({ decodeTileLatents: 1000 });
      const tiled = await sharedCodec({ decodeTileLatents: 8 });
      const [left, top, width, height] = crop;
      const img = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), left, top, width, height);
      const { bitstream } = await whole.encodePixels(img, { quality });
      const a = await whole.decode(bitstream);
      const b = await tiled.decode(bitstream);
      assert.deepEqual([b.width, b.height], [img.width, img.height]);
      assert.equal(sha256(b.data), sha256(a.data));
    });
  }

  it('asks whether to go on before each tile and between stages, and stops there when told', async () => {
    const tiled = await sharedCodec({ decodeTileLatents: 8 });
    const img = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 0, 0, 300, 200);
    const { bitstream } = await tiled.encodePixels(img, { quality: 3 });
    let asked = 0;
    const full = await tiled.decode(bitstream, { stop: () => (asked++, false) });
    // 300 x 200 px pad to 304 x 208: 19 x 13 latents, tiles of 8 -> 3 x 2 tiles, plus three stage points.
    assert.equal(asked, 3 + 3 * 2);
    for (const after of [0, 1, 3, 7]) {
      let n = 0;
      await assert.rejects(tiled.decode(bitstream, { stop: () => n++ >= after }), WorkStoppedError, `stop after ${after} checks`);
      assert.equal(n, after + 1, 'nothing more is asked (or done) after the stop');
    }
    assert.equal(sha256((await tiled.decode(bitstream, { stop: () => false })).data), sha256(full.data));
    // Encodes ask before each probe of a byte budget.
    let probes = 0;
    const fitted = await tiled.encodePixels(img, { quality: 8, maxBytes: 1500, stop: () => (probes++, false) });
    assert.equal(probes, fitted.probes);
    await assert.rejects(tiled.encodePixels(img, { codec: 'webp', quality: 80, maxBytes: 1500, stop: () => true }), WorkStoppedError);
  });

  it('refuses a bitstream announcing more pixels than the decode limit, before decoding', async () => {
    const codec = await sharedCodec({ maxDecodePixels: 256 * 256 });
    const small = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 0, 0, 64, 64);
    const { bitstream } = await codec.encodePixels(small, { quality: 1 });
    // Same payload, header rewritten to announce 4096 x 4096 (a valid container with a fresh checksum).
    const bomb = serialiseContainer({ ...parseContainer(bitstream), width: 4096, height: 4096 });
    await assert.rejects(
      codec.decode(bomb),
      (e: unknown) => e instanceof CodecError && e.code === 'image_too_large' && e.details?.['maxDecodePixels'] === 256 * 256,
    );
    for (const c of ['avif', 'webp'] as const) {
      const { bitstream: classical } = await codec.encodePixels(small, { codec: c, quality: 50 });
      const big = serialiseContainer({ ...parseContainer(classical), width: 8192, height: 8192 });
      await assert.rejects(codec.decode(big), (e: unknown) => e instanceof CodecError && e.code === 'image_too_large', c);
    }
  });
});
