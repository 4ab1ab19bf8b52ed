/**
 * The Gemini API through the gateway, driven by the official `@google/genai` client against a real
 * gateway on loopback and a fake Gemini server (a real HTTP server) that records the exact bytes it
 * receives. Runs in both job modes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ApiError, GoogleGenAI } from '@google/genai';
import sharp from 'sharp';
import { closeCodecs, readShared } from '../helpers.js';
import { startFakeAnthropic } from './fake-anthropic.js';
import type { FakeServer } from './recording-server.js';
import { geminiImages, startFakeGemini } from './fake-gemini.js';
import { minimalHeic } from './heic.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

const list = (headers: Headers, name: string) => headers.get(name)!.split(',');

for (const mode of MODES)
  describe(`Gemini API with @google/genai (${mode} mode)`, () => {
    let fake: FakeServer;
    let anthropic: FakeServer;
    let gw: TestGateway;
    let client: GoogleGenAI;
    let direct: GoogleGenAI;
    let dir: string;
    let png: Buffer;

    before(async () => {
      fake = await startFakeGemini();
      anthropic = await startFakeAnthropic();
      dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-gemini-'));
      const file = path.join(dir, 'backends.json');
      await writeFile(
        file,
        JSON.stringify({
          backends: [
            { name: 'gem', api: 'gemini', url: fake.url, api_key_env: 'GEMINI_KEY', models: ['gemini-*', 'fail-*'] },
            { name: 'claude', api: 'anthropic', url: anthropic.url, models: ['claude-*'] },
          ],
        }),
      );
      gw = await startGateway(mode, { VLMPRESS_BACKENDS_FILE: file, GEMINI_KEY: 'upstream-secret', VLMPRESS_API_KEYS: 'gateway-key' });
      client = new GoogleGenAI({ apiKey: 'gateway-key', httpOptions: { baseUrl: gw.base } });
      direct = new GoogleGenAI({ apiKey: 'upstream-secret', httpOptions: { baseUrl: fake.url } });
      png = await sharp(readShared('data', 'kodak', 'kodim23.png'))
        .extract({ left: 200, top: 100, width: 256, height: 192 })
        .png({ compressionLevel: 0 })
        .toBuffer();
    });
    after(async () => {
      await gw.close();
      await fake.close();
      await anthropic.close();
      await rm(dir, { recursive: true, force: true });
    });

    const post = (base: string, call: string, key: string, body: unknown, query = '') =>
      fetch(`${base}/v1beta/models/${call}${query}`, {
        method: 'POST',
        headers: { 'x-goog-api-key': key, 'content-type': 'application/json' },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });

    it('forwards a text-only request byte for byte and relays JSON, SSE and JSON-array streams unchanged', async () => {
      const body = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }], generationConfig: { temperature: 0 } });
      for (const [call, query] of [
        ['gemini-test:generateContent', ''],
        ['gemini-test:streamGenerateContent', '?alt=sse'],
        ['gemini-test:streamGenerateContent', ''],
      ] as const) {
        const viaDirect = await post(fake.url, call, 'upstream-secret', body, query);
        const viaGateway = await post(gw.base, call, 'gateway-key', body, query);
        assert.equal(viaGateway.status, 200);
        assert.equal(viaGateway.headers.get('content-type'), viaDirect.headers.get('content-type'));
        const chunks: number[] = [];
        const reader = viaGateway.body!.getReader();
        const parts: Uint8Array[] = [];
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          parts.push(r.value);
          chunks.push(r.value.length);
        }
        assert.equal(Buffer.concat(parts).toString(), await viaDirect.text(), `${call}${query}: the answer is the same bytes`);
        if (call.endsWith('streamGenerateContent'))
          assert.ok(chunks.length >= 3, `${call}${query} arrives as it is written (${chunks.length} chunks)`);
        const got = fake.received.at(-1)!;
        assert.equal(got.raw.toString(), body, 'the request went upstream exactly as sent');
        assert.equal(got.url, `/v1beta/models/${call}${query}`);
        assert.equal(got.headers['x-goog-api-key'], 'upstream-secret', 'the backend gets its own key, never the gateway key');
      }
      const params = { model: 'gemini-test', contents: 'Hello' };
      const [a, b] = [await client.models.generateContent(params), await direct.models.generateContent(params)];
      assert.equal(a.text, b.text);
      assert.deepEqual(a.candidates, b.candidates);
      assert.deepEqual(a.usageMetadata, b.usageMetadata);
    });

    it('replaces inline images in the spelling they came in, leaves file_data, and accounts for every byte', async () => {
      // The JS SDK writes inlineData/mimeType; REST users write inline_data/mime_type.
      const { text } = await client.models.generateContent({
        model: 'gemini-test',
        contents: [
          { role: 'user', parts: [{ text: 'What is this?' }, { inlineData: { mimeType: 'image/png', data: png.toString('base64') } }] },
        ],
      });
      assert.equal(text, 'fake saw 1 image(s)');
      const viaSdk = geminiImages(fake.received.at(-1)!.body)[0];
      assert.ok(viaSdk.mimeType && !viaSdk.mime_type, 'camelCase stays camelCase');
      assert.ok(Buffer.from(viaSdk.data, 'base64').length < png.length);

      const res = await post(gw.base, 'gemini-test:generateContent', 'gateway-key', {
        contents: [
          {
            role: 'user',
            parts: [
              { text: 'Compare.' },
              { inline_data: { mime_type: 'image/png', data: png.toString('base64') } },
              { file_data: { mime_type: 'image/jpeg', file_uri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } },
            ],
          },
        ],
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-vlmpress-images'), '1');
      assert.equal(res.headers.get('x-vlmpress-untouched-images'), '1');
      assert.equal(res.headers.get('x-vlmpress-original-bytes'), String(png.length));
      const got = fake.received.at(-1)!.body;
      const sent = got.contents[0].parts[1].inline_data;
      const [kind] = list(res.headers, 'x-vlmpress-upstream');
      assert.equal(sent.mime_type, `image/${kind!.split('/')[1]}`);
      assert.equal(Buffer.from(sent.data, 'base64').length, Number(res.headers.get('x-vlmpress-upstream-bytes')));
      assert.deepEqual(got.contents[0].parts[2], {
        file_data: { mime_type: 'image/jpeg', file_uri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' },
      });
      assert.equal((await res.json()).candidates[0].content.parts[0].text, 'fake saw 1 image(s)');
    });

    it('sends HEIC, which Gemini reads and the codec does not, as it came, counted as untouched', async () => {
      const heic = minimalHeic(640, 480);
      const data = heic.toString('base64');
      const res = await post(gw.base, 'gemini-test:generateContent', 'gateway-key', {
        contents: [{ parts: [{ text: 'What is this?' }, { inline_data: { mime_type: 'image/heic', data } }] }],
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-vlmpress-images'), '0');
      assert.equal(res.headers.get('x-vlmpress-untouched-images'), '1');
      assert.deepEqual(fake.received.at(-1)!.body.contents[0].parts[1], { inline_data: { mime_type: 'image/heic', data } });
      // A format no API here reads is refused in the route's shape.
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>');
      const refused = await post(gw.base, 'gemini-test:generateContent', 'gateway-key', {
        contents: [{ parts: [{ inline_data: { mime_type: 'image/png', data: svg.toString('base64') } }] }],
      });
      assert.equal(refused.status, 415);
      assert.equal(((await refused.json()) as any).error.details[0].reason, 'UNSUPPORTED_IMAGE_FORMAT');
    });

    it('streams with the SDK, and counts tokens with the images replaced', async () => {
      const contents = [
        { role: 'user', parts: [{ text: 'Describe.' }, { inlineData: { mimeType: 'image/png', data: png.toString('base64') } }] },
      ];
      const pieces: string[] = [];
      for await (const chunk of await client.models.generateContentStream({ model: 'gemini-test', contents }))
        pieces.push(chunk.text ?? '');
      assert.equal(pieces.join(''), 'fake saw 1 image(s)');
      assert.ok(pieces.length >= 4);
      const streamed = fake.received.at(-1)!;
      assert.match(streamed.url, /:streamGenerateContent\?alt=sse$/);
      const viaGateway = await client.models.countTokens({ model: 'gemini-test', contents });
      const counted = fake.received.at(-1)!;
      assert.match(counted.url, /:countTokens$/);
      assert.equal(
        geminiImages(counted.body)[0].data,
        geminiImages(streamed.body)[0].data,
        'the image counted is the image generation sends',
      );
      const original = await direct.models.countTokens({ model: 'gemini-test', contents });
      assert.ok(viaGateway.totalTokens! <= original.totalTokens!, `${viaGateway.totalTokens} > ${original.totalTokens}`);
    });

    it('answers gateway errors in Google’s shape, so the SDK raises ApiError', async () => {
      const bad = [
        { role: 'user', parts: [{ inlineData: { mimeType: 'image/png', data: Buffer.from('not an image at all').toString('base64') } }] },
      ];
      await assert.rejects(client.models.generateContent({ model: 'gemini-test', contents: bad }), (e: unknown) => {
        assert.ok(e instanceof ApiError, String(e));
        assert.equal(e.status, 400);
        assert.match(e.message, /INVALID_ARGUMENT/);
        assert.match(e.message, /BAD_IMAGE/);
        return true;
      });
      const res = await post(gw.base, 'claude-test:generateContent', 'gateway-key', { contents: [{ parts: [{ text: 'hi' }] }] });
      assert.equal(res.status, 400);
      const body = (await res.json()) as any;
      assert.equal(body.error.status, 'INVALID_ARGUMENT');
      assert.equal(body.error.code, 400);
      assert.equal(body.error.details[0].reason, 'WRONG_API');
      assert.match(body.error.message, /anthropic API/);
      const unknown = await post(gw.base, 'gemini-test:embedContent', 'gateway-key', { contents: [] });
      assert.equal(unknown.status, 404);
      assert.equal(((await unknown.json()) as any).error.status, 'NOT_FOUND');
      await assert.rejects(
        new GoogleGenAI({ apiKey: 'wrong', httpOptions: { baseUrl: gw.base } }).models.generateContent({
          model: 'gemini-test',
          contents: 'hi',
        }),
        (e: unknown) => e instanceof ApiError && e.status === 401 && /UNAUTHENTICATED/.test(e.message),
      );
      // Upstream errors come back as the backend sent them.
      await assert.rejects(
        client.models.generateContent({ model: 'fail-429', contents: 'hi' }),
        (e: unknown) => e instanceof ApiError && e.status === 429 && /upstream says 429/.test(e.message),
      );
    });

    it('takes the key as ?key=, and sends it upstream only as a header', async () => {
      const res = await fetch(`${gw.base}/v1beta/models/gemini-test:generateContent?key=gateway-key`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
      });
      assert.equal(res.status, 200);
      const got = fake.received.at(-1)!;
      assert.equal(got.url, '/v1beta/models/gemini-test:generateContent');
      assert.equal(got.headers['x-goog-api-key'], 'upstream-secret');
      const wrong = await fetch(`${gw.base}/v1beta/models/gemini-test:generateContent?key=nope`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [] }),
      });
      assert.equal(wrong.status, 401);
    });
  });

describe('Gemini API: keys when neither the gateway nor the backend has its own', () => {
  it('forwards the client’s key, from the header or from ?key=, as x-goog-api-key', async () => {
    const fake = await startFakeGemini();
    const gw = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: fake.url, VLMPRESS_UPSTREAM_API: 'gemini' });
    try {
      const client = new GoogleGenAI({ apiKey: 'AIza-client', httpOptions: { baseUrl: gw.base } });
      await client.models.generateContent({ model: 'gemini-test', contents: 'hi' });
      assert.equal(fake.received.at(-1)!.headers['x-goog-api-key'], 'AIza-client');
      const res = await fetch(`${gw.base}/v1/models/gemini-test:countTokens?key=AIza-query`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }] }),
      });
      assert.equal(res.status, 200);
      const got = fake.received.at(-1)!;
      assert.equal(got.url, '/v1/models/gemini-test:countTokens');
      assert.equal(got.headers['x-goog-api-key'], 'AIza-query');
    } finally {
      await gw.close();
      await fake.close();
    }
  });
});
