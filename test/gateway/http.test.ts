import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { loadConfig } from '../../src/config/config.js';
import { closeCodecs, readShared, sha256, sharedCodec } from '../helpers.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

for (const mode of MODES)
  describe(`gateway HTTP API (${mode} mode)`, () => {
    let gw: TestGateway;
    let png: Buffer;
    let imageServer: ReturnType<typeof createServer>;
    let imageUrl: string;
    before(async () => {
      // No policy table: these tests pin the default quality (test/policy covers the shipped table).
      gw = await startGateway(mode, {
        VLMPRESS_MAX_BODY_BYTES: String(2 * 2 ** 20),
        VLMPRESS_FETCH_ALLOW_CIDRS: '127.0.0.0/8',
        VLMPRESS_POLICY_FILE: 'none',
      });
      png = await sharp(readShared('data', 'kodak', 'kodim07.png'))
        .extract({ left: 100, top: 100, width: 160, height: 120 })
        .png()
        .toBuffer();
      imageServer = createServer((req, res) => {
        if (req.url === '/a.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(png);
        if (req.url === '/page.html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>');
        res.writeHead(302, { location: 'http://10.0.0.1/a.png' }).end();
      });
      await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
      imageUrl = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}`;
    });
    after(async () => {
      await gw.close();
      await new Promise((resolve) => imageServer.close(resolve));
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
      const json = await fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: `data:image/png;base64,${png.toString('base64')}`, quality: 3.5 }),
      });
      const b = (await json.json()) as Record<string, any>;
      assert.equal(b.id, a.id, 'same image and settings: same content address');
      assert.equal(b.cached, true);

      const stream = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${a.id}`)).arrayBuffer());
      assert.equal(sha256(stream), a.id);
      const codec = await sharedCodec();
      const expected = await codec.decode(stream);
      const img = await fetch(`${gw.base}/bitstreams/${a.id}/image?format=png`);
      assert.equal(img.headers.get('content-type'), 'image/png');
      const pixels = await sharp(Buffer.from(await img.arrayBuffer()))
        .raw()
        .toBuffer();
      assert.equal(sha256(pixels), sha256(expected.data), 'the served image is the codec reconstruction');
      const dec = await fetch(`${gw.base}/decompress?format=webp`, {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.vlmpress' },
        body: stream,
      });
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
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: Buffer.from('not an image').toString('base64') }),
          }),
          400,
          'bad_image',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: png.toString('base64'), quality: 11 }),
          }),
          400,
          'invalid_request',
        ],
        [
          fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"nope":1}' }),
          400,
          'invalid_request',
        ],
        [
          fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{broken' }),
          400,
          'invalid_json',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: 'http://169.254.169.254/latest/meta-data/' }),
          }),
          400,
          'image_url_blocked',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: `${imageUrl}/redirect` }),
          }),
          400,
          'image_url_blocked',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: `${imageUrl}/page.html` }),
          }),
          415,
          'unsupported_image_format',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: 'file:///etc/passwd' }),
          }),
          400,
          'invalid_image_url',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: png.toString('base64'), task: 42 }),
          }),
          400,
          'invalid_request',
        ],
        [
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: 'A'.repeat(3 * 2 ** 20) }),
          }),
          413,
          'body_too_large',
        ],
        [
          fetch(`${gw.base}/compress`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }),
          415,
          'unsupported_media_type',
        ],
        [fetch(`${gw.base}/bitstreams/xyz`), 400, 'invalid_request'],
        [fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`), 404, 'not_found'],
        [fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}/image?format=bmp`), 400, 'invalid_request'],
        [
          fetch(`${gw.base}/decompress`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: new Uint8Array(png),
          }),
          400,
          'bad_magic',
        ],
        [
          fetch(`${gw.base}/decompress`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream' },
            body: new Uint8Array(Buffer.from('VLMP\x01')),
          }),
          400,
          'truncated',
        ],
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

    it('fetches an image URL (loopback allowed for this test only) and compresses it like the bytes', async () => {
      const byUrl = (await (
        await fetch(`${gw.base}/compress`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image: `${imageUrl}/a.png`, quality: 2 }),
        })
      ).json()) as Record<string, any>;
      const byBytes = (await (
        await fetch(`${gw.base}/compress`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ image: png.toString('base64'), quality: 2 }),
        })
      ).json()) as Record<string, any>;
      assert.equal(byUrl.id, byBytes.id);
      assert.equal(byUrl.source.bytes, png.length);
    });

    it('reports health, readiness and metrics', async () => {
      assert.deepEqual(await (await fetch(`${gw.base}/healthz`)).json(), { status: 'ok' });
      const ready = (await (await fetch(`${gw.base}/readyz`)).json()) as { ready: boolean; mode: string; checks: Record<string, unknown> };
      assert.equal(ready.ready, true, JSON.stringify(ready));
      assert.equal(ready.mode, mode);
      if (mode === 'redis') assert.deepEqual(Object.keys(ready.checks).sort(), ['redis', 'store', 'workers']);
      const text = await (await fetch(`${gw.base}/metrics`)).text();
      for (const name of [
        'vlmpress_http_request_duration_seconds_bucket',
        'vlmpress_image_bytes_total',
        'vlmpress_encode_duration_seconds_count',
        'vlmpress_model_info',
        'vlmpress_queue_jobs',
        'vlmpress_errors_total',
      ]) {
        assert.ok(text.includes(name), name);
      }
    });
  });

describe('gateway API keys', () => {
  it('requires a Bearer key on the API but not on probes', async () => {
    const gw = await startGateway('embedded', { VLMPRESS_API_KEYS: 'k1, k2' });
    try {
      assert.equal((await fetch(`${gw.base}/healthz`)).status, 200);
      const none = await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`);
      assert.equal(none.status, 401);
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'unauthorized');
      assert.equal((await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`, { headers: { authorization: 'Bearer nope' } })).status, 401);
      assert.equal((await fetch(`${gw.base}/bitstreams/${'0'.repeat(64)}`, { headers: { authorization: 'Bearer k2' } })).status, 404);
      // The API description is open, and lists every endpoint.
      const spec = (await (await fetch(`${gw.base}/docs/json`)).json()) as { openapi: string; paths: Record<string, unknown> };
      assert.match(spec.openapi, /^3\./);
      for (const p of [
        '/compress',
        '/bitstreams/{id}',
        '/bitstreams/{id}/image',
        '/decompress',
        '/v1/chat/completions',
        '/v1/responses',
        '/v1/models',
        '/healthz',
        '/readyz',
        '/metrics',
      ])
        assert.ok(spec.paths[p], p);
      assert.equal((await fetch(`${gw.base}/docs`)).status, 200);
    } finally {
      await gw.close();
    }
  });
});

describe('gateway configuration', () => {
  it('reports every invalid variable at once', () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', REDIS_URL: 'http://x', VLMPRESS_DEFAULT_QUALITY: '12' }),
      (e: unknown) => {
        const problems = (e as { problems: string[] }).problems;
        return problems.length === 3;
      },
    );
  });
});

for (const mode of MODES)
  describe(`gateway shutdown (${mode} mode)`, () => {
    it('finishes the requests in flight before closing', async () => {
      const gw = await startGateway(mode);
      const big = await sharp(readShared('data', 'kodak', 'kodim01.png'))
        .png()
        .toBuffer();
      const pending = fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: big.toString('base64'), quality: 6 }),
      });
      await new Promise((r) => setTimeout(r, 50));
      const closing = gw.close();
      const res = await pending;
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(((await res.json()) as { width: number }).width, 768);
      await closing;
    });
  });
