/**
 * The OpenAI-compatible proxy, driven by the official `openai` client against a real gateway on
 * loopback, with a fake upstream LVLM (a real HTTP server) that records what it receives. Runs in
 * both job modes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import sharp from 'sharp';
import { closeCodecs, readShared, sha256, sharedCodec } from '../helpers.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

const dataUrlOf = (mime: string, bytes: Uint8Array) => `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;

/** The pixels of a forwarded data URL image. */
async function forwardedPixels(url: string): Promise<{ format: string; sha: string }> {
  const m = /^data:(image\/[a-z]+);base64,(.*)$/s.exec(url);
  assert.ok(m, `forwarded image is a data URL: ${url.slice(0, 40)}`);
  const buf = Buffer.from(m[2]!, 'base64');
  const meta = await sharp(buf).metadata();
  return { format: meta.format!, sha: sha256(await sharp(buf).removeAlpha().raw().toBuffer()) };
}

async function reconstructionSha(gw: TestGateway, id: string): Promise<string> {
  const bitstream = new Uint8Array(
    await (await fetch(`${gw.base}/bitstreams/${id}`, { headers: { authorization: 'Bearer gateway-key' } })).arrayBuffer(),
  );
  return sha256((await (await sharedCodec()).decode(bitstream)).data);
}

/**
 * What went upstream for each image, as the headers say: the reconstruction (its pixels are the
 * codec's decode of the stored bitstream, through the lossless PNG the tests configure), or, when that
 * would cost more bytes than the client sent, the client's image exactly as it came.
 */
async function checkForwarded(gw: TestGateway, headers: Headers, forwarded: string[], sent: string[]): Promise<string[]> {
  const kinds = headers.get('x-vlmpress-upstream')!.split(',');
  const ids = headers.get('x-vlmpress-ids')!.split(',');
  const upstreamBytes = headers.get('x-vlmpress-upstream-bytes')!.split(',').map(Number);
  const originalBytes = headers.get('x-vlmpress-original-bytes')!.split(',').map(Number);
  assert.equal(kinds.length, forwarded.length);
  for (const [i, url] of forwarded.entries()) {
    assert.ok(upstreamBytes[i]! <= originalBytes[i]!, `image ${i}: ${upstreamBytes[i]} B upstream for ${originalBytes[i]} B sent`);
    if (kinds[i] === 'reconstruction/png') {
      const f = await forwardedPixels(url);
      assert.equal(f.format, 'png');
      assert.equal(f.sha, await reconstructionSha(gw, ids[i]!), `image ${i} is the codec's reconstruction of the stored bitstream`);
      assert.equal(Buffer.from(url.slice(url.indexOf(',') + 1), 'base64').length, upstreamBytes[i]);
    } else {
      assert.match(kinds[i]!, /^client\//);
      assert.equal(url, sent[i], `image ${i} went as the client sent it`);
    }
  }
  return kinds;
}

function imageParts(body: any): any[] {
  return body.messages.flatMap((m: any) => (Array.isArray(m.content) ? m.content.filter((p: any) => p.type === 'image_url') : []));
}

for (const mode of MODES)
  describe(`LVLM proxy with the openai client (${mode} mode)`, () => {
    let upstream: FakeUpstream;
    let gw: TestGateway;
    let client: OpenAI;
    let png: Buffer;
    let jpeg: Buffer;
    let imageServer: ReturnType<typeof createServer>;
    let imageBase: string;

    before(async () => {
      upstream = await startFakeUpstream();
      gw = await startGateway(mode, {
        VLMPRESS_UPSTREAM_URL: upstream.url,
        VLMPRESS_UPSTREAM_API_KEY: 'upstream-secret',
        VLMPRESS_API_KEYS: 'gateway-key',
        VLMPRESS_FETCH_ALLOW_CIDRS: '127.0.0.0/8',
        // Lossless upstream copies, so the tests can compare pixels with the stored bitstream's decode
        // (the default WebP copy is tested in upstream-copy.test.ts).
        VLMPRESS_PROXY_IMAGE_FORMAT: 'png',
      });
      client = new OpenAI({ apiKey: 'gateway-key', baseURL: `${gw.base}/v1`, maxRetries: 0 });
      png = await sharp(readShared('data', 'kodak', 'kodim23.png'))
        .extract({ left: 200, top: 100, width: 192, height: 128 })
        .png({ compressionLevel: 0 }) // uncompressed: the lossless copy of its reconstruction is smaller
        .toBuffer();
      jpeg = await sharp(readShared('data', 'kodak', 'kodim07.png'))
        .resize(200, 150)
        .jpeg({ quality: 90 })
        .toBuffer();
      imageServer = createServer((req, res) => {
        if (req.url === '/photo.jpg') return void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg);
        res.writeHead(302, { location: 'http://192.168.1.1/photo.jpg' }).end();
      });
      await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
      imageBase = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}`;
    });
    after(async () => {
      await gw.close();
      await upstream.close();
      await new Promise((resolve) => imageServer.close(resolve));
    });

    it('replaces every image with its reconstruction and returns the upstream answer unchanged', async () => {
      const before = upstream.received.length;
      const { data, response } = await client.chat.completions
        .create({
          model: 'fake-vlm',
          messages: [
            { role: 'system', content: 'You describe images.' },
            {
              role: 'user',
              content: [
                { type: 'text', text: 'What is in these pictures?' },
                { type: 'image_url', image_url: { url: dataUrlOf('image/png', png), detail: 'high' } },
                { type: 'image_url', image_url: { url: `${imageBase}/photo.jpg` } },
              ],
            },
          ],
          // @ts-expect-error vlmpress's own per-request settings travel in the body and are removed before forwarding
          vlmpress: { quality: 2 },
        })
        .withResponse();
      assert.equal(data.choices[0]!.message.content, 'fake saw 2 image(s)');
      assert.equal(data.usage?.total_tokens, 13);
      assert.equal(response.headers.get('x-request-id'), 'upstream-req-1', 'upstream headers pass through');
      assert.equal(response.headers.get('x-vlmpress-images'), '2');
      assert.equal(response.headers.get('x-vlmpress-quality'), '2,2');
      assert.equal(response.headers.get('x-vlmpress-original-bytes'), `${png.length},${jpeg.length}`);
      const compressed = response.headers.get('x-vlmpress-compressed-bytes')!.split(',').map(Number);
      assert.ok(compressed[0]! < png.length / 10 && compressed[1]! < jpeg.length, String(compressed));

      assert.equal(upstream.received.length, before + 1);
      const got = upstream.received.at(-1)!;
      assert.equal(got.headers.authorization, 'Bearer upstream-secret', 'the upstream gets its own key, never the gateway key');
      assert.equal(got.body.vlmpress, undefined);
      assert.equal(got.body.messages[0].content, 'You describe images.');
      assert.equal(got.body.messages[1].content[0].text, 'What is in these pictures?');
      const parts = imageParts(got.body);
      assert.equal(parts[0].image_url.detail, 'high', 'other image fields are kept');
      // The PNG's reconstruction is smaller than the PNG; the small JPEG's lossless reconstruction is
      // not, so the JPEG goes as the client sent it (its URL).
      const kinds = await checkForwarded(
        gw,
        response.headers,
        parts.map((p) => p.image_url.url),
        [dataUrlOf('image/png', png), `${imageBase}/photo.jpg`],
      );
      assert.deepEqual(kinds, ['reconstruction/png', 'client/jpeg']);
    });

    it('streams server-sent events through as they come', async () => {
      const stream = await client.chat.completions.create({
        model: 'fake-vlm',
        stream: true,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'Describe.' },
              { type: 'image_url', image_url: { url: dataUrlOf('image/png', png) } },
            ],
          },
        ],
      });
      const pieces: string[] = [];
      for await (const chunk of stream) pieces.push(chunk.choices[0]?.delta?.content ?? '');
      assert.equal(pieces.join(''), 'fake saw 1 image(s)');
      assert.ok(pieces.filter(Boolean).length >= 4, 'arrives in several chunks');
      assert.equal(upstream.received.at(-1)!.body.stream, true);
    });

    it('passes upstream errors through with their status and body', async () => {
      await assert.rejects(
        client.chat.completions.create({ model: 'fail-429', messages: [{ role: 'user', content: 'hi' }] }),
        (e: unknown) =>
          e instanceof OpenAI.RateLimitError &&
          e.status === 429 &&
          e.message.includes('upstream says 429') &&
          (e.error as { code?: string }).code === 'fake_failure',
      );
      await assert.rejects(
        client.chat.completions.create({ model: 'fail-503', messages: [{ role: 'user', content: 'hi' }] }),
        (e: unknown) => e instanceof OpenAI.APIError && e.status === 503,
      );
    });

    it('decodes an image the client compressed itself, without re-encoding it', async () => {
      const res = await fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { authorization: 'Bearer gateway-key', 'content-type': 'application/json', accept: 'application/vnd.vlmpress' },
        body: JSON.stringify({ image: png.toString('base64'), quality: 5 }),
      });
      const bitstream = new Uint8Array(await res.arrayBuffer());
      const { response } = await client.chat.completions
        .create({
          model: 'fake-vlm',
          messages: [
            { role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrlOf('application/vnd.vlmpress', bitstream) } }] },
          ],
        })
        .withResponse();
      assert.equal(response.headers.get('x-vlmpress-compressed-bytes'), String(bitstream.length));
      assert.equal(response.headers.get('x-vlmpress-original-bytes'), String(bitstream.length));
      assert.equal(response.headers.get('x-vlmpress-quality'), '5');
      assert.equal(response.headers.get('x-vlmpress-ids'), sha256(bitstream));
      const f = await forwardedPixels(imageParts(upstream.received.at(-1)!.body)[0].image_url.url);
      assert.equal(f.sha, sha256((await (await sharedCodec()).decode(bitstream)).data));
    });

    it('makes the reconstruction of an image repeated in later turns once, and forwards the same one', async () => {
      const counts = async () => {
        const text = await (await fetch(`${gw.base}/metrics`)).text();
        const read = (outcome: string) =>
          Number(new RegExp(`^vlmpress_decode_cache_requests_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
        return { hit: read('hit'), miss: read('miss'), shared: read('shared') };
      };
      const photo = await sharp(readShared('data', 'kodak', 'kodim05.png'))
        .extract({ left: 64, top: 64, width: 160, height: 120 })
        .png({ compressionLevel: 0 }) // uncompressed: the lossless copy of its reconstruction is smaller
        .toBuffer();
      const turn = (n: number) => {
        const messages: OpenAI.ChatCompletionMessageParam[] = [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: dataUrlOf('image/png', photo) } },
            ],
          },
        ];
        for (let i = 1; i < n; i++)
          messages.push({ role: 'assistant', content: `answer ${i}` }, { role: 'user', content: `question ${i + 1}` });
        return client.chat.completions
          .create({ model: 'fake-vlm', messages, vlmpress: { quality: 3 } } as OpenAI.ChatCompletionCreateParamsNonStreaming)
          .withResponse();
      };
      const start = await counts();
      const first = await turn(1);
      const firstUrl = imageParts(upstream.received.at(-1)!.body)[0].image_url.url;
      const afterFirst = await counts();
      assert.equal(afterFirst.miss - start.miss, 0, "the first turn's reconstruction comes from its encode job, not a decode");
      // Two later turns at once: one is answered from the cache, and both forward identical bytes.
      const [second, third] = await Promise.all([turn(2), turn(3)]);
      const end = await counts();
      assert.equal(end.miss, afterFirst.miss, 'later turns do not decode again');
      assert.equal(end.hit + end.shared - afterFirst.hit - afterFirst.shared, 2);
      for (const r of [second, third]) assert.equal(r.response.headers.get('x-vlmpress-ids'), first.response.headers.get('x-vlmpress-ids'));
      for (const got of upstream.received.slice(-2)) assert.equal(imageParts(got.body)[0].image_url.url, firstUrl);
      await checkForwarded(gw, first.response.headers, [firstUrl], [dataUrlOf('image/png', photo)]);
    });

    it('takes settings from x-vlmpress-* headers', async () => {
      const { response } = await client.chat.completions
        .create(
          {
            model: 'fake-vlm',
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrlOf('image/png', png) } }] }],
          },
          { headers: { 'x-vlmpress-max-bytes': '900' } },
        )
        .withResponse();
      assert.ok(Number(response.headers.get('x-vlmpress-compressed-bytes')) <= 900);
      assert.match(response.headers.get('x-vlmpress-policy')!, /max_bytes=900/);
      const q = await client.chat.completions
        .create(
          {
            model: 'fake-vlm',
            messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrlOf('image/png', png) } }] }],
          },
          { headers: { 'x-vlmpress-quality': '6.5' } },
        )
        .withResponse();
      assert.equal(q.response.headers.get('x-vlmpress-quality'), '6.5');
    });

    it('serves the Responses API too: input_image parts compressed, file_id images untouched, JSON and events relayed', async () => {
      const input = (): OpenAI.Responses.ResponseInput => [
        {
          role: 'user',
          content: [
            { type: 'input_text', text: 'Read the sign in this photo.' },
            { type: 'input_image', image_url: dataUrlOf('image/png', png), detail: 'low' },
            { type: 'input_image', file_id: 'file-abc123', detail: 'auto' },
          ],
        },
      ];
      const { data, response } = await client.responses
        .create({
          model: 'fake-vlm',
          input: input(),
          instructions: 'Be brief.',
          vlmpress: { quality: 3 },
        } as OpenAI.Responses.ResponseCreateParamsNonStreaming)
        .withResponse();
      assert.equal(data.output_text, 'fake saw 2 image(s)');
      assert.equal(response.headers.get('x-request-id'), 'upstream-req-2');
      assert.equal(response.headers.get('x-vlmpress-images'), '1');
      assert.equal(response.headers.get('x-vlmpress-quality'), '3');
      assert.match(response.headers.get('x-vlmpress-policy')!, /class=text/, 'the input text reaches the task classifier');
      const got = upstream.received.at(-1)!;
      assert.equal(got.url, '/v1/responses');
      assert.equal(got.body.vlmpress, undefined);
      assert.equal(got.body.instructions, 'Be brief.');
      const [text, image, file] = got.body.input[0].content;
      assert.deepEqual(text, { type: 'input_text', text: 'Read the sign in this photo.' });
      assert.deepEqual(file, { type: 'input_image', file_id: 'file-abc123', detail: 'auto' });
      assert.equal(image.detail, 'low');
      await checkForwarded(gw, response.headers, [image.image_url], [dataUrlOf('image/png', png)]);

      const stream = await client.responses.create({ model: 'fake-vlm', input: input(), stream: true });
      const deltas: string[] = [];
      let completed = '';
      for await (const event of stream) {
        if (event.type === 'response.output_text.delta') deltas.push(event.delta);
        if (event.type === 'response.completed')
          completed = (event.response.output[0] as OpenAI.Responses.ResponseOutputMessage).content
            .map((c) => (c.type === 'output_text' ? c.text : ''))
            .join('');
      }
      assert.equal(deltas.length, 4, 'one event per word, relayed as they came');
      assert.equal(deltas.join(''), 'fake saw 2 image(s)');
      assert.equal(completed, 'fake saw 2 image(s)');

      await assert.rejects(
        client.responses.create({
          model: 'fake-vlm',
          input: [{ role: 'user', content: [{ type: 'input_image', detail: 'auto' } as never] }],
        }),
        (e: unknown) => e instanceof OpenAI.APIError && e.status === 400 && (e.error as { code?: string }).code === 'invalid_request',
      );
      const plain = await client.responses.create({ model: 'fake-vlm', input: 'No pictures here.' });
      assert.equal(plain.output_text, 'fake saw 0 image(s)');
    });

    it('lists the upstream models', async () => {
      const models = [];
      for await (const m of client.models.list()) models.push(m.id);
      assert.deepEqual(models, ['fake-vlm']);
    });

    it('rejects bad requests with 4xx errors the client understands, and forwards nothing', async () => {
      const before = upstream.received.length;
      const image = (url: string) => [{ role: 'user' as const, content: [{ type: 'image_url' as const, image_url: { url } }] }];
      const cases: [() => Promise<unknown>, number, string][] = [
        [
          () => client.chat.completions.create({ model: 'fake-vlm', messages: image(`${imageBase}/redirect-to-private`) }),
          400,
          'image_url_blocked',
        ],
        [() => client.chat.completions.create({ model: 'fake-vlm', messages: image('http://[::1]:9/x.png') }), 400, 'image_url_blocked'],
        [() => client.chat.completions.create({ model: 'fake-vlm', messages: image('ftp://example.com/x.png') }), 400, 'invalid_image_url'],
        [
          () => client.chat.completions.create({ model: 'fake-vlm', messages: image(dataUrlOf('image/png', Buffer.from('not a png'))) }),
          400,
          'bad_image',
        ],
        [
          () =>
            client.chat.completions.create({
              model: 'fake-vlm',
              messages: image(dataUrlOf('application/vnd.vlmpress', Buffer.from('VLMP\x01garbage'))),
            }),
          400,
          'truncated',
        ],
        [
          () =>
            client.chat.completions.create({
              model: 'fake-vlm',
              messages: image(dataUrlOf('image/png', png)),
              // @ts-expect-error unknown vlmpress field
              vlmpress: { qualty: 3 },
            }),
          400,
          'invalid_request',
        ],
        [
          () =>
            client.chat.completions.create(
              { model: 'fake-vlm', messages: image(dataUrlOf('image/png', png)) },
              { headers: { 'x-vlmpress-quality': '42' } },
            ),
          400,
          'invalid_request',
        ],
        // @ts-expect-error messages missing
        [() => client.chat.completions.create({ model: 'fake-vlm' }), 400, 'invalid_request'],
        [() => client.chat.completions.create({ model: 'fake-vlm', messages: [null as never] }), 400, 'invalid_request'],
        [
          () =>
            client.responses.create({
              model: 'fake-vlm',
              input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'gopher://x/y.png', detail: 'auto' }] }],
            }),
          400,
          'invalid_image_url',
        ],
        [() => client.responses.create({ model: 'fake-vlm', input: 42 as never }), 400, 'invalid_request'],
        [() => new OpenAI({ apiKey: 'wrong', baseURL: `${gw.base}/v1`, maxRetries: 0 }).models.list(), 401, 'unauthorized'],
      ];
      for (const [call, status, code] of cases) {
        await assert.rejects(call(), (e: unknown) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.status, status, e.message);
          assert.equal((e.error as { code?: string }).code, code, e.message);
          return true;
        });
      }
      assert.equal(upstream.received.length, before, 'nothing reached the upstream');
    });
  });

describe('LVLM proxy with several backends', () => {
  let a: FakeUpstream;
  let b: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  before(async () => {
    a = await startFakeUpstream({ models: ['alpha-vl', 'shared'], name: 'a' });
    b = await startFakeUpstream({ models: ['beta-1', 'beta-2', 'shared'], name: 'b' });
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'vlmpress-backends-')), 'backends.json');
    await writeFile(
      file,
      JSON.stringify({
        backends: [
          { name: 'a', url: a.url, api_key_env: 'TEST_KEY_A', profile: 'qwen2-vl', models: ['alpha-vl'] },
          { name: 'b', url: b.url, profile: 'llava', models: ['beta*'] },
        ],
      }),
    );
    gw = await startGateway('embedded', { VLMPRESS_BACKENDS_FILE: file, TEST_KEY_A: 'key-a' });
    client = new OpenAI({ apiKey: 'client-own-key', baseURL: `${gw.base}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });

  it('routes by model, merges the model lists and refuses unknown models', async () => {
    const r1 = await client.chat.completions.create({ model: 'alpha-vl', messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(r1.data.choices[0]!.message.content, 'a saw 0 image(s)');
    assert.equal(r1.response.headers.get('x-vlmpress-backend'), 'a');
    assert.equal(a.received.at(-1)!.headers.authorization, 'Bearer key-a');
    const r2 = await client.chat.completions.create({ model: 'beta-2', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r2.choices[0]!.message.content, 'b saw 0 image(s)');
    // No gateway keys and no backend key: the client's own key goes through; backend a uses its configured key.
    assert.equal(b.received.at(-1)!.headers.authorization, 'Bearer client-own-key');
    await assert.rejects(
      client.chat.completions.create({ model: 'gamma', messages: [{ role: 'user', content: 'hi' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError && (e.error as { code?: string }).code === 'model_not_found',
    );
    // Backend b is a LLaVA-1.5 (336x336 view): its images are downscaled to that before encoding.
    const big = await sharp(readShared('data', 'kodak', 'kodim01.png'))
      .png()
      .toBuffer();
    const img = await client.chat.completions
      .create({
        model: 'beta-1',
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrlOf('image/png', big) } }] }],
      })
      .withResponse();
    assert.match(img.response.headers.get('x-vlmpress-policy')!, /class=general/);
    const sent = imageParts(b.received.at(-1)!.body)[0].image_url.url as string;
    const meta = await sharp(Buffer.from(sent.split(',')[1]!, 'base64')).metadata();
    assert.deepEqual([meta.width, meta.height], [336, 224]);
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['alpha-vl', 'shared', 'beta-1', 'beta-2']);
  });
});
