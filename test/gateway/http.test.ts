import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { buildApp } from '../../src/server/app.js';
import { loadConfig } from '../../src/server/config.js';
import { closeCodecs, readShared, sha256, sharedCodec } from '../helpers.js';

async function start(env: Record<string, string>): Promise<{ app: FastifyInstance; base: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-gw-'));
  const config = loadConfig({ VLMPRESS_DATA_DIR: dir, VLMPRESS_WORKER_THREADS: '1', LOG_LEVEL: 'silent', ...env });
  const app = await buildApp({ config });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, base: address, dir };
}

describe('gateway HTTP API (embedded mode)', () => {
  let gw: { app: FastifyInstance; base: string; dir: string };
  let png: Buffer;
  before(async () => {
    gw = await start({ VLMPRESS_MAX_BODY_BYTES: String(2 * 2 ** 20) });
    png = await sharp(readShared('data', 'kodak', 'kodim07.png')).extract({ left: 100, top: 100, width: 160, height: 120 }).png().toBuffer();
  });
  after(async () => {
    await gw.app.close();
    await rm(gw.dir, { recursive: true, force: true });
    await closeCodecs();
  });

  const compressMultipart = (quality?: string, accept?: string) => {
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'a.png');
    if (quality) form.set('quality', quality);
    return fetch(`${gw.base}/compress`, { method: 'POST', body: form, headers: accept ? { accept } : {} });
  };

  it('compresses multipart and JSON uploads, stores once, and serves the bitstream and its decoding', async () => {
    const res = await compressMultipart('3.5');
    assert.equal(res.status, 200, await res.clone().text());
    const a = (await res.json()) as Record<string, any>;
    assert.deepEqual([a.quality, a.width, a.height, a.model.name, a.cached], [3.5, 160, 120, 'vlmp-mbv2-cpu-v1', false]);
    assert.equal(a.policy.source, 'request');
    const json = await fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: `data:image/png;base64,${png.toString('base64')}`, quality: 3.5 }) });
    const b = (await json.json()) as Record<string, any>;
    assert.equal(b.id, a.id, 'same image and settings: same content address');
    assert.equal(b.cached, true);

    const stream = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${a.id}`)).arrayBuffer());
    assert.equal(sha256(stream), a.id);
    const codec = await sharedCodec();
    const expected = await codec.decode(stream);
    const img = await fetch(`${gw.base}/bitstreams/${a.id}/image?format=png`);
    assert.equal(img.headers.get('content-type'), 'image/png');
    const pixels = await sharp(Buffer.from(await img.arrayBuffer())).raw().toBuffer();
    assert.equal(sha256(pixels), sha256(expected.data), 'the served image is the codec reconstruction');
    const dec = await fetch(`${gw.base}/decompress?format=webp`, { method: 'POST', headers: { 'content-type': 'application/vnd.vlmpress' }, body: stream });
    assert.equal(dec.status, 200);
    assert.equal((await sharp(Buffer.from(await dec.arrayBuffer())).metadata()).format, 'webp');

    const raw = await compressMultipart('3.5', 'application/octet-stream');
    assert.equal(raw.headers.get('content-type'), 'application/vnd.vlmpress');
    assert.equal(sha256(new Uint8Array(await raw.arrayBuffer())), a.id);
  });

  it('uses the default quality and honours max_bytes', async () => {
    const d = (await (await compressMultipart()).json()) as Record<string, any>;
    assert.deepEqual([d.quality, d.policy.source], [4, 'default']);
    const form = new FormData();
    form.set('image', new Blob([new Uint8Array(png)]), 'a.png');
    form.set('max_bytes', '600');
    const r = (await (await fetch(`${gw.base}/compress`, { method: 'POST', body: form })).json()) as Record<string, any>;
    assert.ok(r.bytes <= 600, JSON.stringify(r));
  });

  it('answers bad input with 4xx JSON errors', async () => {
    const cases: [Promise<Response>, number, string][] = [
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: Buffer.from('not an image').toString('base64') }) }), 400, 'bad_image'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: png.toString('base64'), quality: 11 }) }), 400, 'invalid_request'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nope":1}' }), 400, 'invalid_request'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{broken' }), 400, 'invalid_json'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'http://127.0.0.1/x.png' }) }), 400, 'unsupported_image_source'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'A'.repeat(3 * 2 ** 20) }) }), 413, 'body_too_large'],
      [fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }), 415, 'unsupported_media_type'],
      [fetch(`${gw.base}/bitstreams/xyz`), 400, 'invalid_request'],
      [fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`), 404, 'not_found'],
      [fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}/image?format=bmp`), 400, 'invalid_request'],
      [fetch(`${gw.base}/decompress`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(png) }), 400, 'bad_magic'],
      [fetch(`${gw.base}/decompress`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(Buffer.from('VLMP\x01')) }), 400, 'truncated'],
      [fetch(`${gw.base}/nowhere`), 404, 'not_found'],
    ];
    for (const [p, status, code] of cases) {
      const res = await p;
      const body = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(body.error.code, code, JSON.stringify(body));
      assert.ok(body.error.message.length > 0);
    }
  });

  it('reports health, readiness and metrics', async () => {
    assert.deepEqual(await (await fetch(`${gw.base}/healthz`)).json(), { status: 'ok' });
    const ready = (await (await fetch(`${gw.base}/readyz`)).json()) as { ready: boolean };
    assert.equal(ready.ready, true);
    const text = await (await fetch(`${gw.base}/metrics`)).text();
    for (const name of ['vlmpress_http_request_duration_seconds_bucket', 'vlmpress_bytes_saved_total', 'vlmpress_encode_duration_seconds_count', 'vlmpress_model_info', 'vlmpress_queue_jobs', 'vlmpress_errors_total']) {
      assert.ok(text.includes(name), name);
    }
  });
});

describe('gateway API keys', () => {
  it('requires a Bearer key on the API but not on probes', async () => {
    const gw = await start({ VLMPRESS_API_KEYS: 'k1, k2' });
    try {
      assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
      const none = await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal((await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`, { headers: { authorization: 'Bearer nope' } })).status, 401);
      assert.equal((await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`, { headers: { authorization: 'Bearer k2' } })).status, 404);
    } finally {
      await gw.app.close();
      await rm(gw.dir, { recursive: true, force: true });
    }
  });
});

describe('gateway configuration', () => {
  it('reports every invalid variable at once', () => {
    assert.throws(() => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', VLMPRESS_DEFAULT_QUALITY: '12' }), (e: unknown) => {
      const problems = (e as { problems: string[] }).problems;
      return problems.length === 3;
    });
  });
});
