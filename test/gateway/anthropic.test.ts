/**
 * The Anthropic Messages API through the gateway, driven by the official `@anthropic-ai/sdk` against a
 * real gateway on loopback and a fake Anthropic server (a real HTTP server) that records the exact
 * bytes it receives. Runs in both job modes.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import sharp from 'sharp';
import { closeCodecs, readShared } from '../helpers.js';
import { anthropicImages, startFakeAnthropic } from './fake-anthropic.js';
import type { FakeServer } from './recording-server.js';
import { startFakeGemini } from './fake-gemini.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { MODES, startGateway, type TestGateway } from './harness.js';
import { minimalHeic } from './heic.js';

after(closeCodecs);

/** A backends file naming one backend per API: Anthropic's with its own key, Gemini's, and an OpenAI default. */
async function backendsFile(dir: string, anthropic: string, gemini: string, openai: string, anthropicKey = true): Promise<string> {
  const file = path.join(dir, 'backends.json');
  await writeFile(
    file,
    JSON.stringify({
      backends: [
        {
          name: 'claude',
          api: 'anthropic',
          url: anthropic,
          ...(anthropicKey ? { api_key_env: 'ANTHROPIC_KEY' } : {}),
          models: ['claude-*', 'fail-*', 'overloaded-mid-stream'],
        },
        { name: 'gem', api: 'gemini', url: gemini, models: ['gemini-*'] },
        { name: 'oai', url: openai, models: ['gpt-*'], default: true },
      ],
    }),
  );
  return file;
}

const imageBlock = (mediaType: string, bytes: Buffer) => ({
  type: 'image' as const,
  source: { type: 'base64' as const, media_type: mediaType as 'image/png', data: bytes.toString('base64') },
});

/** The bytes of a base64 image block as received upstream. */
const blockBytes = (block: any) => Buffer.from(block.source.data, 'base64');

const list = (headers: Headers, name: string) => headers.get(name)!.split(',');

for (const mode of MODES)
  describe(`Anthropic Messages API with @anthropic-ai/sdk (${mode} mode)`, () => {
    let fake: FakeServer;
    let others: { close(): Promise<void> }[];
    let gw: TestGateway;
    let client: Anthropic;
    let direct: Anthropic;
    let dir: string;
    let png: Buffer;
    let jpeg: Buffer;
    let imageServer: ReturnType<typeof createServer>;
    let imageBase: string;

    before(async () => {
      fake = await startFakeAnthropic();
      const gemini = await startFakeGemini();
      const openai: FakeUpstream = await startFakeUpstream();
      others = [gemini, openai];
      dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-anthropic-'));
      gw = await startGateway(mode, {
        VLMPRESS_BACKENDS_FILE: await backendsFile(dir, fake.url, gemini.url, openai.url),
        ANTHROPIC_KEY: 'upstream-secret',
        VLMPRESS_API_KEYS: 'gateway-key',
        VLMPRESS_FETCH_ALLOW_CIDRS: '127.0.0.0/8',
      });
      client = new Anthropic({ apiKey: 'gateway-key', baseURL: gw.base, maxRetries: 0 });
      direct = new Anthropic({ apiKey: 'upstream-secret', baseURL: fake.url, maxRetries: 0 });
      png = await sharp(readShared('data', 'kodak', 'kodim23.png'))
        .extract({ left: 200, top: 100, width: 256, height: 192 })
        .png({ compressionLevel: 0 })
        .toBuffer();
      jpeg = await sharp(readShared('data', 'kodak', 'kodim07.png'))
        .resize(384, 256)
        .jpeg({ quality: 95 })
        .toBuffer();
      imageServer = createServer((req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(jpeg));
      await new Promise<void>((resolve) => imageServer.listen(0, '127.0.0.1', resolve));
      imageBase = `http://127.0.0.1:${(imageServer.address() as { port: number }).port}`;
    });
    after(async () => {
      await gw.close();
      await fake.close();
      await Promise.all(others.map((o) => o.close()));
      await new Promise((resolve) => imageServer.close(resolve));
      await rm(dir, { recursive: true, force: true });
    });

    it('forwards a text-only request byte for byte and relays JSON and SSE answers unchanged', async () => {
      const body = JSON.stringify({ model: 'claude-test', max_tokens: 64, messages: [{ role: 'user', content: 'Hello' }] });
      const post = (base: string, key: string, b: string) =>
        fetch(`${base}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
          body: b,
        });
      for (const b of [body, body.replace('"max_tokens"', '"stream":true,"max_tokens"')]) {
        const viaDirect = await post(fake.url, 'upstream-secret', b);
        const viaGateway = await post(gw.base, 'gateway-key', b);
        assert.equal(viaGateway.status, 200);
        assert.equal(viaGateway.headers.get('content-type'), viaDirect.headers.get('content-type'));
        assert.equal(await viaGateway.text(), await viaDirect.text(), 'the answer is the same bytes');
        const got = fake.received.at(-1)!;
        assert.equal(got.raw.toString(), b, 'the request went upstream exactly as sent');
        assert.equal(got.headers['x-api-key'], 'upstream-secret', 'the backend gets its own key, never the gateway key');
        assert.equal(got.headers.authorization, undefined);
        assert.equal(got.headers['anthropic-version'], '2023-06-01');
        assert.equal(viaGateway.headers.get('x-vlmpress-backend'), 'claude');
      }
      const params = { model: 'claude-test', max_tokens: 64, messages: [{ role: 'user' as const, content: 'Hello' }] };
      assert.deepEqual(await client.messages.create(params), await direct.messages.create(params));
    });

    it('replaces base64 and URL images, leaves file sources, and accounts for every byte', async () => {
      const { data, response } = await client.messages
        .create(
          {
            model: 'claude-test',
            max_tokens: 64,
            system: 'You describe images.',
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'What is in these pictures?' },
                  imageBlock('image/png', png),
                  { type: 'image', source: { type: 'url', url: `${imageBase}/photo.jpg` } },
                  { type: 'image', source: { type: 'file', file_id: 'file_abc' } },
                ],
              },
            ],
          },
          { headers: { 'anthropic-beta': 'files-api-2025-04-14' } },
        )
        .withResponse();
      assert.equal((data.content[0] as { text: string }).text, 'fake saw 3 image(s)');
      assert.equal(response.headers.get('request-id'), 'req_fake_1', 'upstream headers pass through');
      assert.equal(response.headers.get('x-vlmpress-images'), '2');
      assert.equal(response.headers.get('x-vlmpress-untouched-images'), '1');
      assert.deepEqual(list(response.headers, 'x-vlmpress-original-bytes').map(Number), [png.length, jpeg.length]);
      const upstreamBytes = list(response.headers, 'x-vlmpress-upstream-bytes').map(Number);
      const kinds = list(response.headers, 'x-vlmpress-upstream');
      const got = fake.received.at(-1)!;
      assert.equal(got.headers['anthropic-beta'], 'files-api-2025-04-14');
      assert.equal(got.body.vlmpress, undefined);
      const blocks = anthropicImages(got.body);
      assert.deepEqual(blocks[2], { type: 'image', source: { type: 'file', file_id: 'file_abc' } }, 'file sources pass untouched');
      for (const i of [0, 1]) {
        assert.ok(upstreamBytes[i]! <= [png.length, jpeg.length][i]!, `image ${i}: never more bytes upstream than sent`);
        if (kinds[i]!.startsWith('client/')) continue;
        assert.equal(blocks[i].source.type, 'base64');
        assert.equal(blocks[i].source.media_type, `image/${kinds[i]!.split('/')[1]}`);
        assert.equal(blockBytes(blocks[i]).length, upstreamBytes[i], `image ${i}: the bytes sent are the bytes reported`);
        assert.equal((await sharp(blockBytes(blocks[i])).metadata()).format, kinds[i]!.split('/')[1]);
      }
      assert.ok(!kinds[0]!.startsWith('client/'), 'the uncompressed PNG is replaced');
      // Each stored bitstream can be read back.
      for (const id of list(response.headers, 'x-vlmpress-ids')) {
        const res = await fetch(`${gw.base}/bitstreams/${id}`, { headers: { authorization: 'Bearer gateway-key' } });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }
    });

    it('decodes a bitstream the client compressed itself, without re-encoding it', async () => {
      const compressed = await fetch(`${gw.base}/compress`, {
        method: 'POST',
        headers: { authorization: 'Bearer gateway-key', 'content-type': 'application/json', accept: 'application/vnd.vlmpress' },
        body: JSON.stringify({ image: png.toString('base64'), quality: 5 }),
      });
      const bitstream = Buffer.from(await compressed.arrayBuffer());
      const { response } = await client.messages
        .create({
          model: 'claude-test',
          max_tokens: 16,
          messages: [{ role: 'user', content: [imageBlock('application/vnd.vlmpress', bitstream)] }],
        })
        .withResponse();
      assert.equal(response.headers.get('x-vlmpress-compressed-bytes'), String(bitstream.length));
      assert.equal(response.headers.get('x-vlmpress-quality'), '5');
      assert.match(response.headers.get('x-vlmpress-upstream')!, /^reconstruction\//);
      const block = anthropicImages(fake.received.at(-1)!.body)[0];
      assert.match(block.source.media_type, /^image\//);
      assert.equal(blockBytes(block).length, Number(response.headers.get('x-vlmpress-upstream-bytes')));
    });

    it('compresses an image inside a tool result', async () => {
      const { data, response } = await client.messages
        .create({
          model: 'claude-test',
          max_tokens: 64,
          tools: [{ name: 'screenshot', description: 'takes a screenshot', input_schema: { type: 'object', properties: {} } }],
          messages: [
            { role: 'user', content: 'What is on the screen?' },
            { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'screenshot', input: {} }] },
            {
              role: 'user',
              content: [
                { type: 'tool_result', tool_use_id: 'toolu_1', content: [{ type: 'text', text: 'here' }, imageBlock('image/png', png)] },
              ],
            },
          ],
        })
        .withResponse();
      assert.equal((data.content[0] as { text: string }).text, 'fake saw 1 image(s)');
      assert.equal(response.headers.get('x-vlmpress-images'), '1');
      const sent = fake.received.at(-1)!.body.messages[2].content[0].content;
      assert.equal(sent[0].text, 'here');
      assert.equal(blockBytes(sent[1]).length, Number(response.headers.get('x-vlmpress-upstream-bytes')));
      assert.ok(blockBytes(sent[1]).length < png.length);
    });

    it('streams events through as they come, and an error event mid-stream as the SDK expects it', async () => {
      const params = {
        model: 'claude-test',
        max_tokens: 64,
        stream: true as const,
        messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'Describe.' }, imageBlock('image/png', png)] }],
      };
      const events: string[] = [];
      const texts: string[] = [];
      for await (const event of await client.messages.create(params)) {
        events.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') texts.push(event.delta.text);
      }
      assert.equal(texts.join(''), 'fake saw 1 image(s)');
      assert.deepEqual(
        [...new Set(events)],
        ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'],
      );
      assert.ok(texts.length >= 4, 'arrives in several events');
      const broken = { ...params, model: 'overloaded-mid-stream' };
      const fails = async (c: Anthropic) => {
        for await (const event of await c.messages.create(broken)) void event;
      };
      await assert.rejects(fails(direct), /Overloaded/);
      await assert.rejects(fails(client), (e: unknown) => e instanceof Anthropic.APIError && /Overloaded/.test(e.message));
    });

    it('counts tokens with the images replaced as /v1/messages replaces them', async () => {
      const params = { model: 'claude-test', messages: [{ role: 'user' as const, content: [imageBlock('image/png', png)] }] };
      const { data: viaGateway, response } = await client.messages.countTokens(params).withResponse();
      const counted = fake.received.at(-1)!;
      assert.equal(counted.url, '/v1/messages/count_tokens');
      assert.equal(response.headers.get('x-vlmpress-images'), '1');
      const original = await direct.messages.countTokens(params);
      assert.ok(viaGateway.input_tokens <= original.input_tokens, `${viaGateway.input_tokens} > ${original.input_tokens}`);
      await client.messages.create({ ...params, max_tokens: 16 });
      const sent = fake.received.at(-1)!;
      assert.equal(
        anthropicImages(counted.body)[0].source.data,
        anthropicImages(sent.body)[0].source.data,
        'the image counted is the image the message sends',
      );
    });

    it('answers gateway errors in Anthropic’s shape, so the SDK raises its usual exceptions', async () => {
      const bad = {
        model: 'claude-test',
        max_tokens: 16,
        messages: [{ role: 'user' as const, content: [imageBlock('image/png', Buffer.from('not an image at all'))] }],
      };
      await assert.rejects(client.messages.create(bad), (e: unknown) => {
        assert.ok(e instanceof Anthropic.BadRequestError, String(e));
        const body = e.error as { type: string; error: { type: string; code: string; message: string } };
        assert.equal(body.type, 'error');
        assert.equal(body.error.type, 'invalid_request_error');
        assert.equal(body.error.code, 'bad_image');
        assert.match(body.error.message, /messages\[0\]\.content\[0\]\.source\.data/);
        return true;
      });
      // HEIC, which Anthropic does not read, is refused (Gemini's route sends it as it came).
      await assert.rejects(
        client.messages.create({ ...bad, messages: [{ role: 'user', content: [imageBlock('image/heic', minimalHeic(64, 48))] }] }),
        (e: unknown) => e instanceof Anthropic.APIError && e.status === 415 && (e.error as any).error.code === 'unsupported_image_format',
      );
      // A model on a backend of another API: refused, never translated.
      await assert.rejects(
        client.messages.create({ model: 'gemini-2.5-flash', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
        (e: unknown) =>
          e instanceof Anthropic.BadRequestError && (e.error as any).error.code === 'wrong_api' && /gemini API/.test(e.message),
      );
      await assert.rejects(
        new Anthropic({ apiKey: 'wrong', baseURL: gw.base, maxRetries: 0 }).messages.create({
          model: 'claude-test',
          max_tokens: 16,
          messages: [{ role: 'user', content: 'hi' }],
        }),
        (e: unknown) => e instanceof Anthropic.AuthenticationError && (e.error as any).error.type === 'authentication_error',
      );
      // A request without messages fails the route's schema, in the same shape.
      await assert.rejects(
        client.messages.create({ model: 'claude-test', max_tokens: 16 } as never),
        (e: unknown) => e instanceof Anthropic.BadRequestError && (e.error as any).error.code === 'invalid_request',
      );
      // Upstream errors come back as the backend sent them.
      await assert.rejects(
        client.messages.create({ model: 'fail-429', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
        (e: unknown) =>
          e instanceof Anthropic.RateLimitError && /upstream says 429/.test(e.message) && e.headers?.get('x-upstream-marker') === 'yes',
      );
    });
  });

describe('Anthropic Messages API: keys when neither the gateway nor the backend has its own', () => {
  it('forwards the client’s own key to the backend, in the header the client used', async () => {
    const fake = await startFakeAnthropic();
    const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-anthropic-'));
    const gw = await startGateway('embedded', { VLMPRESS_BACKENDS_FILE: await backendsFile(dir, fake.url, fake.url, fake.url, false) });
    try {
      const client = new Anthropic({ apiKey: 'sk-ant-client', baseURL: gw.base, maxRetries: 0 });
      await client.messages.create({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
      // This SDK version sends its key as a bearer token; older ones, and curl users, send x-api-key.
      const got = fake.received.at(-1)!.headers;
      assert.equal(got['x-api-key'] ?? got.authorization?.replace(/^Bearer /, ''), 'sk-ant-client');
      const res = await fetch(`${gw.base}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': 'sk-ant-curl', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'claude-test', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
      });
      assert.equal(res.status, 200);
      assert.equal(fake.received.at(-1)!.headers['x-api-key'], 'sk-ant-curl');
    } finally {
      await gw.close();
      await fake.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
