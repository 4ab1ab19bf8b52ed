/** Classical codecs inside the VLMP container: what the policy picks where they measure cheaper. */
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { CodecKind, parseContainer, serialiseContainer } from '../../src/codec/container.js';
import { crc32c } from '../../src/codec/crc32c.js';
import { CodecError, type Codec, type RgbImage } from '../../src/codec/index.js';
import { classicalPayload } from '../../src/codec/classical.js';
import { closeCodecs, FIXTURES, psnr, rgbCrop, rgbOf, sharedCodec, sharedFile } from '../helpers.js';

describe('classical codecs in the VLMP container', () => {
  let codec: Codec;
  let img: RgbImage;
  before(async () => {
    codec = await sharedCodec();
    img = await rgbCrop(sharedFile('data', 'kodak', 'kodim23.png'), 131, 77, 201, 143);
  });
  after(closeCodecs);

  for (const name of ['avif', 'webp', 'jpeg', 'avif-screen'] as const) {
    it(`${name}: round trip, inspect, sizes grow with quality`, async () => {
      const lo = await codec.encodePixels(img, { codec: name, quality: 20 });
      const hi = await codec.encodePixels(img, { codec: name, quality: 85 });
      assert.ok(lo.bytes < hi.bytes, `${lo.bytes} < ${hi.bytes}`);
      assert.deepEqual([hi.model.name, hi.quality, hi.width, hi.height], [name, 85, 201, 143]);
      const info = codec.inspect(hi.bitstream);
      assert.deepEqual([info.codec, info.quality, info.sections.hyper, info.model.name], [name, 85, 0, null]);
      const d = await codec.decode(hi.bitstream);
      assert.deepEqual([d.width, d.height, d.quality, d.model.name], [201, 143, 85, name]);
      assert.ok(psnr(img, d) > psnr(img, await codec.decode(lo.bitstream)));
      assert.ok(psnr(img, d) > 30, String(psnr(img, d)));
    });
  }

  it('avif-screen: a standard AVIF from avifenc, smaller than sharp AVIF on rendered text at equal or better fidelity', async () => {
    const text = await rgbOf(path.join(FIXTURES, 'text', 'document-11px.png'));
    const screen = await codec.encodePixels(text, { codec: 'avif-screen', quality: 35 });
    const plain = await codec.encodePixels(text, { codec: 'avif', quality: 35 });
    assert.equal(parseContainer(screen.bitstream).codec, CodecKind.AvifScreen);
    const payload = classicalPayload(screen.bitstream);
    assert.equal(payload?.codec, 'avif', 'a backend that reads AVIF can take the file as it is');
    // The payload is a plain AVIF file: it opens without the container, at the announced size.
    const opened = await sharp(payload!.file).metadata();
    assert.deepEqual([opened.format, opened.width, opened.height], ['heif', text.width, text.height]);
    const [ps, pp] = [psnr(text, await codec.decode(screen.bitstream)), psnr(text, await codec.decode(plain.bitstream))];
    assert.ok(screen.bytes < plain.bytes && ps >= pp, JSON.stringify({ screen: [screen.bytes, ps], plain: [plain.bytes, pp] }));
  });

  it('avif-screen without avifenc is a clear unsupported_codec, and decoding needs no avifenc', async () => {
    const missing = await sharedCodec({ avifenc: '/nonexistent/avifenc' });
    await assert.rejects(
      missing.encodePixels(img, { codec: 'avif-screen', quality: 50 }),
      (e: unknown) => e instanceof CodecError && e.code === 'unsupported_codec' && /libavif-bin/.test(e.message),
    );
    const made = await codec.encodePixels(img, { codec: 'avif-screen', quality: 50 });
    assert.equal((await missing.decode(made.bitstream)).width, img.width);
  });

  it('fits a byte budget with the highest quality that fits', async () => {
    const r = await codec.encodePixels(img, { codec: 'webp', quality: 90, maxBytes: 3000 });
    assert.ok(r.bytes <= 3000 && r.quality < 90, JSON.stringify({ bytes: r.bytes, q: r.quality }));
    const next = await codec.encodePixels(img, { codec: 'webp', quality: r.quality + 1 });
    assert.ok(next.bytes > 3000, 'one step up would not fit');
    await assert.rejects(
      codec.encodePixels(img, { codec: 'avif', quality: 50, maxBytes: 10 }),
      (e: unknown) => e instanceof CodecError && e.code === 'budget_too_small',
    );
    await assert.rejects(
      codec.encodePixels(img, { codec: 'jpeg', quality: 7.5 }),
      (e: unknown) => e instanceof CodecError && e.code === 'invalid_argument',
    );
  });

  it('refuses payloads that do not match their header', async () => {
    const webp = parseContainer((await codec.encodePixels(img, { codec: 'webp', quality: 50 })).bitstream);
    const relabel = (kind: CodecKind, width = webp.width) => serialiseContainer({ ...webp, codec: kind, width, hyper: new Uint8Array(0) });
    for (const bad of [
      relabel(CodecKind.Avif),
      relabel(CodecKind.Webp, webp.width + 1),
      serialiseContainer({ ...webp, latent: webp.latent.subarray(0, 40) }),
    ]) {
      await assert.rejects(codec.decode(bad), (e: unknown) => e instanceof CodecError && e.code === 'corrupt_payload');
    }
    // A classical stream with a hyper section is malformed.
    const withHyper = serialiseContainer({ ...webp, hyper: Uint8Array.of(1) });
    assert.throws(
      () => parseContainer(withHyper),
      (e: unknown) => e instanceof CodecError && e.code === 'bad_header',
    );
    // Damage is still the CRC's to find.
    const flipped = Uint8Array.from(relabel(CodecKind.Webp));
    flipped[40] = flipped[40]! ^ 0x10;
    assert.notEqual(crc32c(flipped, 0, flipped.length - 4), new DataView(flipped.buffer).getUint32(flipped.length - 4));
    assert.throws(
      () => parseContainer(flipped),
      (e: unknown) => e instanceof CodecError && e.code === 'corrupt_payload',
    );
  });
});
