/**
 * Route schemas are the validation: built from the constants the code uses (the model's quality
 * levels, the request settings), refusing with our error shape, never changing what the proxy
 * forwards, and still documenting the bodies they do not validate (multipart, binary).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { describeModels } from '../../src/codec/index.js';
import { REQUEST_SETTINGS } from '../../src/routes/schemas.js';
import { closeCodecs, readShared } from '../helpers.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

describe('route schemas', () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let levels: number;
  before(async () => {
    upstream = await startFakeUpstream();
    gw = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: upstream.url, VLMPRESS_POLICY_FILE: 'none' });
    levels = (await describeModels())[0]!.levels;
  });
  after(async () => {
    await gw.close();
    await upstream.close();
  });

  it('document the model levels, every request setting, and the bodies they do not validate', async () => {
    const doc = (await (await fetch(`${gw.base}/docs/json`)).json()) as any;
    const compress = doc.paths['/compress'].post.requestBody.content;
    const { quality, codec } = compress['application/json'].schema.properties;
    assert.equal(quality.maximum, 100, 'the classical codecs go to 100');
    assert.match(quality.description, new RegExp(`learned 1 \\(smallest\\) to ${levels}`));
    assert.deepEqual(codec.enum, ['learned', 'avif', 'webp', 'jpeg', 'avif-screen', 'semantic-avif']);
    assert.equal(compress['multipart/form-data'].schema.properties.image.format, 'binary');
    assert.equal(doc.paths['/decompress'].post.requestBody.content['application/vnd.vlmpress'].schema.format, 'binary');
    const vlmpress = doc.paths['/v1/chat/completions'].post.requestBody.content['application/json'].schema.properties.vlmpress;
    assert.deepEqual(Object.keys(vlmpress.properties), [...REQUEST_SETTINGS]);
    assert.equal(vlmpress.additionalProperties, false);
  });

  it('refuse out-of-range and unknown fields with 400 invalid_request, naming them', async () => {
    const png = (
      await sharp(readShared('data', 'kodak', 'kodim02.png'))
        .resize(64, 48)
        .png()
        .toBuffer()
    ).toString('base64');
    const bad = await fetch(`${gw.base}/compress`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: png, quality: levels + 1 }),
    });
    assert.equal(bad.status, 400);
    const body = (await bad.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_request');
    assert.match(body.error.message, new RegExp(`quality for the learned codec .* from 1 to ${levels}`));
    const unknown = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-vlm', messages: [{ role: 'user', content: 'hi' }], vlmpress: { qualty: 3 } }),
    });
    assert.equal(unknown.status, 400);
    assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /additional properties: qualty/);
    // No coercion: a boolean is not a quality (AJV's default coercion would have made it 1).
    const coerced = await fetch(`${gw.base}/compress`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: png, quality: true }),
    });
    assert.equal(coerced.status, 400);
    // A numeric string still works where clients send one (form-style JSON), with the same limits.
    const ok = await fetch(`${gw.base}/compress`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: png, quality: '2.5' }),
    });
    assert.equal(ok.status, 200);
  });

  it('take back the codec and quality an answer reports, and say the range of each codec', async () => {
    const png = await sharp(readShared('data', 'kodak', 'kodim03.png'))
      .resize(96, 64)
      .png()
      .toBuffer();
    const compress = (fields: Record<string, unknown>) =>
      fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: png.toString('base64'), ...fields }),
      });
    const first = (await (await compress({ codec: 'avif', quality: 85 })).json()) as { id: string; codec: string; quality: number };
    assert.deepEqual([first.codec, first.quality], ['avif', 85]);
    const again = (await (await compress({ codec: first.codec, quality: first.quality })).json()) as { id: string; cached: boolean };
    assert.equal(again.id, first.id);
    assert.equal(again.cached, true);
    const learned = await compress({ quality: 3 });
    assert.equal(learned.headers.get('x-vlmpress-codec'), 'learned');
    // Semantic AVIF: the bundled editor package's pre-editor, then AVIF; retrievable and decodable like any bitstream.
    const semantic = (await (await compress({ codec: 'semantic-avif', quality: 40 })).json()) as {
      id: string;
      codec: string;
      quality: number;
    };
    assert.deepEqual([semantic.codec, semantic.quality], ['semantic-avif', 40]);
    const image = await fetch(`${gw.base}/bitstreams/${semantic.id}/image?format=png`);
    assert.equal(image.status, 200);
    const meta = await sharp(Buffer.from(await image.arrayBuffer())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 96, 64]);
    const refusals: [Record<string, unknown>, RegExp][] = [
      [
        { quality: 85 },
        /quality for the learned codec \(or name codec avif\/webp\/jpeg\/avif-screen\/semantic-avif\) must be a number from 1 to/,
      ],
      [{ codec: 'avif', quality: 101 }, /must be <= 100/],
      [{ codec: 'webp', quality: 7.5 }, /quality for codec webp must be an integer from 1 to 100/],
      [{ codec: 'jpeg' }, /codec jpeg needs a quality/],
      [{ codec: 'heic', quality: 50 }, /codec must be equal to one of the allowed values/],
    ];
    for (const [fields, message] of refusals) {
      const r = await compress(fields);
      assert.equal(r.status, 400, JSON.stringify(fields));
      const { error } = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(error.code, 'invalid_request');
      assert.match(error.message, message);
    }
  });

  it('answer a bitstream uploaded to /compress with already_compressed, in either body', async () => {
    const png = await sharp(readShared('data', 'kodak', 'kodim03.png'))
      .resize(64, 64)
      .png()
      .toBuffer();
    const bitstream = Buffer.from(
      await (
        await fetch(`${gw.base}/compress`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/vnd.vlmpress' },
          body: JSON.stringify({ image: png.toString('base64'), quality: 2 }),
        })
      ).arrayBuffer(),
    );
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(bitstream)]), 'a.vlmp');
    const multipart = await fetch(`${gw.base}/compress`, { method: 'POST', body: form });
    const json = await fetch(`${gw.base}/compress`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: bitstream.toString('base64') }),
    });
    for (const r of [multipart, json]) {
      assert.equal(r.status, 400);
      assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'already_compressed');
    }
  });

  it('refuse a proxied image_url that is not a URL with invalid_image_url', async () => {
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'fake-vlm',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'notaurl' } }] }],
      }),
    });
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { error: { code: string } }).error.code, 'invalid_image_url');
  });

  it('never change the body the proxy forwards (no coercion, nothing removed)', async () => {
    const request = {
      model: 'fake-vlm',
      messages: [{ role: 'user', content: 'hi' }],
      temperature: '0.5',
      stream: false,
      extra_field: { kept: [1, '2'] },
    };
    const r = await fetch(`${gw.base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(upstream.received.at(-1)!.body, request);
  });
});
