import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crc32c } from '../../src/codec/crc32c.js';
import { Codec, CodecError, type CodecErrorCode, type RgbImage } from '../../src/codec/index.js';
import { closeCodecs, psnr, rgbCrop, rgbOf, sharedCodec, sharedFile } from '../helpers.js';

after(closeCodecs);

function isCode(code: CodecErrorCode) {
  return (e: unknown) => e instanceof CodecError && e.code === code;
}

describe('codec round trips on real images', () => {
  let codec: Codec;
  let images: { name: string; img: RgbImage }[];
  before(async () => {
    codec = await sharedCodec();
    images = [
      { name: 'kodim19 crop 256x192', img: await rgbCrop(sharedFile('data', 'kodak', 'kodim19.png'), 200, 150, 256, 192) },
      { name: 'goldfish 224', img: await rgbOf(sharedFile('data', 'imagenet-dev', 'n01443537_goldfish.JPEG'), 224) },
      { name: 'frymire crop 161x97 (odd size)', img: await rgbCrop(sharedFile('data', 'waterloo', 'frymire.png'), 400, 500, 161, 97) },
    ];
  });

  it('decodes at every level, with bpp strictly increasing and fidelity rising', async () => {
    for (const { name, img } of images) {
      const bpps: number[] = [];
      const psnrs: number[] = [];
      for (let q = 1; q <= 8; q++) {
        const r = await codec.encodePixels(img, { quality: q });
        assert.equal(r.quality, q);
        const d = await codec.decode(r.bitstream);
        assert.deepEqual([d.width, d.height], [img.width, img.height]);
        bpps.push(r.bpp);
        psnrs.push(psnr(img, d));
      }
      for (let i = 1; i < 8; i++) assert.ok(bpps[i]! > bpps[i - 1]!, `${name}: bpp ${bpps.map((b) => b.toFixed(3)).join(' ')}`);
      // Photos gain several dB across the range; the synthetic frymire pattern far less (the model
      // was trained on photos and rendered text), but it must still improve.
      const gain = name.startsWith('frymire') ? 0.5 : 2;
      assert.ok(psnrs[7]! > psnrs[0]! + gain, `${name}: PSNR ${psnrs.map((p) => p.toFixed(2)).join(' ')}`);
      assert.ok(psnrs[0]! > 15, `${name}: the lowest level still resembles the image`);
    }
  });

  it('interpolates fractional qualities between the neighbouring levels (stored in 1/256 steps)', async () => {
    const { img } = images[0]!;
    const [a, b, c] = await Promise.all([3, 3.3, 4].map((q) => codec.encodePixels(img, { quality: q })));
    assert.equal(b!.quality, Math.round(3.3 * 256) / 256);
    assert.ok(a!.bytes < b!.bytes && b!.bytes < c!.bytes, `${a!.bytes} < ${b!.bytes} < ${c!.bytes}`);
    assert.equal((await codec.decode(b!.bitstream)).quality, b!.quality);
  });

  it('encodes the same pixels to the same bytes', async () => {
    const { img } = images[2]!;
    const [a, b] = [await codec.encodePixels(img, { quality: 5 }), await codec.encodePixels(img, { quality: 5 })];
    assert.deepEqual(a.bitstream, b.bitstream);
  });

  it('decodes identically with 1 and 2 threads and with graph optimisation off', async () => {
    const other = await sharedCodec({ session: { intraOpThreads: 2, graphOptimizationLevel: 'disabled' } });
    const single = await sharedCodec({ session: { intraOpThreads: 1 } });
    for (const { img } of images) {
      const r = await codec.encodePixels(img, { quality: 4.5 });
      assert.deepEqual((await other.decode(r.bitstream)).data, (await single.decode(r.bitstream)).data);
    }
  });
});

describe('rate control with maxBytes', () => {
  it('returns the highest quality on the 1/8 grid that fits, without trying every step', async () => {
    const codec = await sharedCodec();
    const img = await rgbOf(sharedFile('data', 'imagenet-dev', 'n01530575_brambling.JPEG'), 224);
    const q1 = await codec.encodePixels(img, { quality: 1 });
    const q8 = await codec.encodePixels(img, { quality: 8 });
    for (const frac of [0.15, 0.4, 0.7]) {
      const budget = Math.round(q1.bytes + frac * (q8.bytes - q1.bytes));
      const r = await codec.encodePixels(img, { maxBytes: budget });
      assert.ok(r.bytes <= budget, `${r.bytes} <= ${budget}`);
      assert.ok(r.quality < 8);
      const next = await codec.encodePixels(img, { quality: r.quality + 1 / 8 });
      assert.ok(next.bytes > budget, `quality ${r.quality + 1 / 8} would not fit (${next.bytes} > ${budget})`);
      assert.ok(r.probes <= 8, `${r.probes} encodes`);
    }
    const roomy = await codec.encodePixels(img, { maxBytes: q8.bytes + 100 });
    assert.deepEqual([roomy.quality, roomy.probes], [8, 1]);
    const capped = await codec.encodePixels(img, { maxBytes: q8.bytes + 100, quality: 2.5 });
    assert.equal(capped.quality, 2.5, 'an explicit quality caps the budget search');
    await assert.rejects(codec.encodePixels(img, { maxBytes: Math.floor(q1.bytes / 2) }), (e: unknown) => {
      return e instanceof CodecError && e.code === 'budget_too_small' && e.details?.['minBytes'] === q1.bytes;
    });
  });
});

describe('codec errors', () => {
  it('rejects invalid arguments', async () => {
    const codec = await sharedCodec();
    const img = await rgbOf(sharedFile('data', 'waterloo', 'text.png'));
    for (const quality of [0, 8.5, NaN, -1]) await assert.rejects(codec.encodePixels(img, { quality }), isCode('invalid_argument'));
    for (const maxBytes of [0, 1.5, -10]) await assert.rejects(codec.encodePixels(img, { maxBytes }), isCode('invalid_argument'));
    await assert.rejects(codec.encodePixels({ data: new Uint8Array(10), width: 3, height: 3 }), isCode('invalid_argument'));
    await assert.rejects(codec.encodePixels(img, { model: 'no-such-model' }), isCode('unknown_model'));
  });

  it('names an unknown model, an out-of-range quality and an oversized image in a valid frame', async () => {
    const codec = await sharedCodec();
    const img = await rgbCrop(sharedFile('data', 'kodak', 'kodim01.png'), 0, 0, 40, 40);
    const good = (await codec.encodePixels(img, { quality: 2 })).bitstream;
    const withField = (offset: number, bytes: number[]) => {
      const b = Uint8Array.from(good);
      b.set(bytes, offset);
      new DataView(b.buffer).setUint32(b.length - 4, crc32c(b, 0, b.length - 4), false);
      return b;
    };
    await assert.rejects(codec.decode(withField(7, [0xde, 0xad, 0xbe, 0xef])), isCode('unknown_model'));
    await assert.rejects(codec.decode(withField(15, [0x09, 0x00])), isCode('bad_header'));
    await assert.rejects(codec.decode(withField(15, [0x00, 0x80])), isCode('bad_header'));
    const small = await Codec.load({ maxPixels: 1000 });
    try {
      await assert.rejects(small.decode(good), isCode('image_too_large'));
    } finally {
      await small.close();
    }
  });
});
