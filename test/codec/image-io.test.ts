import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { CodecError, decodeImage, encodeImage, type CodecErrorCode } from '../../src/codec/index.js';
import { readShared, rgbCrop, sharedFile } from '../helpers.js';

function isCode(code: CodecErrorCode) {
  return (e: unknown) => e instanceof CodecError && e.code === code;
}

const photo = () => sharp(readShared('data', 'kodak', 'kodim15.png')).extract({ left: 100, top: 80, width: 120, height: 90 });

describe('image input', () => {
  it('reads JPEG, PNG, WebP, AVIF, GIF and TIFF as 8-bit RGB', async () => {
    const inputs: [string, Buffer][] = [
      ['jpeg', await photo().jpeg().toBuffer()],
      ['png', await photo().png().toBuffer()],
      ['webp', await photo().webp().toBuffer()],
      ['avif', await photo().avif({ effort: 0 }).toBuffer()],
      ['gif', await photo().gif().toBuffer()],
      ['tiff', await photo().tiff().toBuffer()],
    ];
    for (const [format, buf] of inputs) {
      const img = await decodeImage(buf);
      assert.deepEqual([img.format, img.width, img.height, img.data.length], [format, 120, 90, 120 * 90 * 3], format);
    }
  });

  it('applies EXIF orientation', async () => {
    const rotated = await photo().jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const img = await decodeImage(rotated);
    assert.deepEqual([img.width, img.height], [90, 120]);
  });

  it('converts grayscale and 16-bit images to 8-bit RGB', async () => {
    const gray = await decodeImage(readShared('data', 'waterloo', 'camera.png'));
    assert.deepEqual([gray.width, gray.height, gray.data.length], [256, 256, 256 * 256 * 3]);
    assert.ok(gray.data[0] === gray.data[1] && gray.data[1] === gray.data[2]);
    const png16 = await photo().toColourspace('rgb16').png().toBuffer();
    assert.equal((await sharp(png16).metadata()).depth, 'ushort');
    const deep = await decodeImage(png16);
    const plain = await decodeImage(await photo().png().toBuffer());
    let maxDiff = 0;
    for (let i = 0; i < plain.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(plain.data[i]! - deep.data[i]!));
    assert.ok(maxDiff <= 1, `16-bit input matches the 8-bit one within 1 (got ${maxDiff})`);
  });

  it('flattens alpha onto white', async () => {
    const transparent = await sharp({ create: { width: 8, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer();
    const img = await decodeImage(transparent);
    assert.ok(img.hadAlpha);
    assert.ok(img.data.every((v) => v === 255));
  });

  it('reads only the first frame of an animated GIF', async () => {
    const frames = await sharp(await photo().png().toBuffer())
      .resize(32, 24)
      .raw()
      .toBuffer();
    const anim = await sharp(Buffer.concat([frames, Buffer.alloc(frames.length, 0)]), {
      raw: { width: 32, height: 48, channels: 3, pageHeight: 24 },
    } as never)
      .gif()
      .toBuffer();
    assert.equal((await sharp(anim).metadata()).pages, 2);
    const img = await decodeImage(anim);
    assert.deepEqual([img.width, img.height], [32, 24]);
    assert.ok(
      img.data.some((v) => v > 40),
      'the first frame (the photo), not the black second one',
    );
  });

  it('refuses images above the pixel limit before decoding them', async () => {
    const big = await sharp({ create: { width: 5000, height: 5000, channels: 3, background: 'white' } })
      .png()
      .toBuffer();
    await assert.rejects(decodeImage(big, 1_000_000), isCode('image_too_large'));
  });

  it('names unreadable and unsupported inputs', async () => {
    await assert.rejects(decodeImage(new Uint8Array()), isCode('bad_image'));
    await assert.rejects(decodeImage(Buffer.from('definitely not an image')), isCode('bad_image'));
    const png = await photo().png().toBuffer();
    await assert.rejects(decodeImage(png.subarray(0, png.length / 2)), isCode('bad_image'));
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
    await assert.rejects(decodeImage(svg), isCode('unsupported_image_format'));
  });
});

describe('image output', () => {
  it('writes PNG losslessly, WebP and JPEG close to the pixels', async () => {
    const img = await rgbCrop(sharedFile('data', 'kodak', 'kodim15.png'), 0, 0, 64, 48);
    const png = await encodeImage(img, 'png');
    assert.deepEqual((await decodeImage(png)).data, img.data);
    for (const format of ['webp', 'jpeg'] as const) {
      const out = await encodeImage(img, format, { quality: 95 });
      const back = await decodeImage(out);
      assert.equal(back.format, format);
      let se = 0;
      for (let i = 0; i < img.data.length; i++) se += (img.data[i]! - back.data[i]!) ** 2;
      assert.ok(se / img.data.length < 30, `${format} MSE ${se / img.data.length}`);
    }
  });
});
