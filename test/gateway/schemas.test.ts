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
    assert.equal(compress['application/json'].schema.properties.quality.maximum, levels);
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
    assert.match(body.error.message, new RegExp(`quality must be <= ${levels}`));
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
