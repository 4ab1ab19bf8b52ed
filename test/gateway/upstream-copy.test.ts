/**
 * What the proxy really sends upstream, with the default settings (WebP copies), through the official
 * openai client and a fake upstream that records every request: for photos and text pages as JPEG,
 * PNG and WebP, no image costs more bytes upstream than the client sent; the headers and the metrics
 * equal the bytes the upstream received and the tokens its profile bills. Both job modes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import sharp, { type Sharp } from 'sharp';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { classicalPayload } from '../../src/codec/index.js';
import { imageTokens } from '../../src/policy/tokens.js';
import { closeCodecs, readShared } from '../helpers.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

/** A page of text, rendered (DejaVu, as the harness's text set). */
function textPage(width: number, height: number): Sharp {
  const lines = Array.from(
    { length: Math.floor((height - 40) / 22) },
    (_, i) =>
      `<text x="20" y="${40 + i * 22}">Line ${i + 1}: invoice 40-${i * 37} total ${(i * 13.7).toFixed(2)} EUR due 2026-12-0${i % 9}</text>`,
  );
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="white"/><g font-family="DejaVu Sans" font-size="15" fill="#111">${lines.join('')}</g></svg>`;
  return sharp(Buffer.from(svg));
}

async function metricsText(gw: TestGateway): Promise<string> {
  return (await fetch(`${gw.base}/metrics`)).text();
}
function metric(text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

for (const mode of MODES)
  describe(`upstream copies (${mode} mode)`, () => {
    let upstream: FakeUpstream;
    let gw: TestGateway;
    let client: OpenAI;
    const inputs: { name: string; mime: string; bytes: Buffer; width: number; height: number }[] = [];

    before(async () => {
      upstream = await startFakeUpstream();
      gw = await startGateway(mode, { VLMPRESS_UPSTREAM_URL: upstream.url, VLMPRESS_UPSTREAM_PROFILE: 'openai' });
      client = new OpenAI({ apiKey: 'k', baseURL: `${gw.base}/v1`, maxRetries: 0 });
      const photo = sharp(readShared('data', 'kodak', 'kodim21.png'));
      const page = textPage(900, 600);
      for (const [kind, img] of [
        ['photo', photo],
        ['text', page],
      ] as const) {
        for (const [format, mime, encode] of [
          ['jpeg', 'image/jpeg', (s: Sharp) => s.jpeg({ quality: 90 })],
          ['png', 'image/png', (s: Sharp) => s.png()],
          ['webp', 'image/webp', (s: Sharp) => s.webp({ quality: 80 })],
        ] as const) {
          const { data, info } = await encode(img.clone()).toBuffer({ resolveWithObject: true });
          inputs.push({ name: `${kind} ${format}`, mime, bytes: data, width: info.width, height: info.height });
        }
      }
      // A small, strongly compressed JPEG: its lossless-quality reconstruction cannot be sent smaller.
      const { data, info } = await photo.clone().resize(240, 160).jpeg({ quality: 35 }).toBuffer({ resolveWithObject: true });
      inputs.push({ name: 'small jpeg q35', mime: 'image/jpeg', bytes: data, width: info.width, height: info.height });
    });
    after(async () => {
      await gw.close();
      await upstream.close();
    });

    it('never sends more image bytes upstream than the client sent, and reports exactly what it sent', async () => {
      const before = await metricsText(gw);
      const sent = inputs.map((x) => `data:${x.mime};base64,${x.bytes.toString('base64')}`);
      const { response } = await client.chat.completions
        .create({
          model: 'fake-vlm',
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'Describe each.' },
                ...sent.map((url) => ({ type: 'image_url' as const, image_url: { url } })),
              ],
            },
          ],
        })
        .withResponse();
      const forwarded: string[] = upstream.received
        .at(-1)!
        .body.messages[0].content.filter((p: { type: string }) => p.type === 'image_url')
        .map((p: { image_url: { url: string } }) => p.image_url.url);
      const list = (h: string) => response.headers.get(h)!.split(',');
      const kinds = list('x-vlmpress-upstream');
      const upstreamBytes = list('x-vlmpress-upstream-bytes').map(Number);
      const originalTokens = list('x-vlmpress-original-tokens').map(Number);
      const upstreamTokens = list('x-vlmpress-upstream-tokens').map(Number);
      assert.deepEqual(
        list('x-vlmpress-original-bytes').map(Number),
        inputs.map((x) => x.bytes.length),
      );
      let totalUpstream = 0;
      let totalClientTokens = 0;
      let totalUpstreamTokens = 0;
      for (const [i, url] of forwarded.entries()) {
        const input = inputs[i]!;
        const m = /^data:(image\/[a-z]+);base64,(.*)$/s.exec(url)!;
        const bytes = Buffer.from(m[2]!, 'base64');
        const meta = await sharp(bytes).metadata();
        assert.equal(bytes.length, upstreamBytes[i], `${input.name}: the header says what went upstream`);
        assert.ok(bytes.length <= input.bytes.length, `${input.name}: ${bytes.length} B upstream for ${input.bytes.length} B sent`);
        assert.equal(originalTokens[i], imageTokens('openai', input.width, input.height));
        assert.equal(upstreamTokens[i], imageTokens('openai', meta.width!, meta.height!), `${input.name}: tokens of what was sent`);
        if (kinds[i] === 'reconstruction/webp') assert.equal(m[1], 'image/webp');
        else assert.equal(url, sent[i], `${input.name} (${kinds[i]}) went as the client sent it`);
        totalUpstream += bytes.length;
        totalClientTokens += originalTokens[i]!;
        totalUpstreamTokens += upstreamTokens[i]!;
      }
      // JPEG q90 and PNG inputs go as WebP copies of their reconstructions. A WebP at quality 80, and
      // a small JPEG at quality 35, cost less than any copy at the calibrated quality: they go as sent.
      assert.deepEqual(kinds, [
        'reconstruction/webp',
        'reconstruction/webp',
        'client/webp',
        'reconstruction/webp',
        'reconstruction/webp',
        'client/webp',
        'client/jpeg',
      ]);

      const after = await metricsText(gw);
      const delta = (name: string, labels: string) => metric(after, name, labels) - metric(before, name, labels);
      assert.equal(delta('vlmpress_image_bytes_total', 'route="proxy",stage="upstream"'), totalUpstream);
      assert.equal(
        delta('vlmpress_image_bytes_total', 'route="proxy",stage="client"'),
        inputs.reduce((n, x) => n + x.bytes.length, 0),
      );
      assert.equal(
        delta('vlmpress_image_bytes_total', 'route="proxy",stage="stored"'),
        list('x-vlmpress-compressed-bytes').reduce((n, b) => n + Number(b), 0),
      );
      assert.equal(delta('vlmpress_image_tokens_total', 'profile="openai",stage="client"'), totalClientTokens);
      assert.equal(delta('vlmpress_image_tokens_total', 'profile="openai",stage="upstream"'), totalUpstreamTokens);
    });

    it('keeps each image within max_image_tokens, and refuses a budget no image fits', async () => {
      const url = `data:image/jpeg;base64,${inputs[0]!.bytes.toString('base64')}`;
      const ask = (budget: string) =>
        client.chat.completions
          .create(
            { model: 'fake-vlm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url, detail: 'high' } }] }] },
            { headers: { 'x-vlmpress-max-image-tokens': budget } },
          )
          .withResponse();
      // 768x512 under OpenAI's rule is two tiles (425 tokens); within 300, one tile (255).
      const { response } = await ask('300');
      assert.equal(response.headers.get('x-vlmpress-original-tokens'), '425');
      assert.equal(response.headers.get('x-vlmpress-upstream-tokens'), '255');
      const sent = upstream.received.at(-1)!.body.messages[0].content[0].image_url.url as string;
      const meta = await sharp(Buffer.from(sent.slice(sent.indexOf(',') + 1), 'base64')).metadata();
      assert.equal(Math.max(meta.width!, meta.height!), 512);
      await assert.rejects(
        ask('80'),
        (e: unknown) =>
          e instanceof OpenAI.APIError && e.status === 422 && (e.error as { code?: string }).code === 'token_budget_too_small',
      );
    });

    it('sends the same copy again for a repeated image, from the reconstruction cache', async () => {
      const url = `data:image/png;base64,${inputs[1]!.bytes.toString('base64')}`;
      const ask = () =>
        client.chat.completions
          .create({ model: 'fake-vlm', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] })
          .withResponse();
      const first = await ask();
      const a = upstream.received.at(-1)!.body.messages[0].content[0].image_url.url;
      const second = await ask();
      const b = upstream.received.at(-1)!.body.messages[0].content[0].image_url.url;
      assert.equal(a, b);
      assert.equal(first.response.headers.get('x-vlmpress-upstream-bytes'), second.response.headers.get('x-vlmpress-upstream-bytes'));
    });
  });

describe('stored files sent as they are', () => {
  let upstream: FakeUpstream;
  let gw: TestGateway;
  let client: OpenAI;
  let dir: string;
  before(async () => {
    upstream = await startFakeUpstream({ models: ['reads-avif', 'plain'] });
    dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-backends-'));
    const file = path.join(dir, 'backends.json');
    await writeFile(
      file,
      JSON.stringify({
        backends: [
          { name: 'avif', url: upstream.url, profile: 'openai', models: ['reads-avif'], accepts: ['avif'] },
          { name: 'plain', url: upstream.url, profile: 'openai', models: ['plain'] },
        ],
      }),
    );
    gw = await startGateway('embedded', { VLMPRESS_BACKENDS_FILE: file });
    client = new OpenAI({ apiKey: 'k', baseURL: `${gw.base}/v1`, maxRetries: 0 });
  });
  after(async () => {
    await gw.close();
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  });

  const photo = () =>
    sharp(readShared('data', 'kodak', 'kodim14.png'))
      .jpeg({ quality: 92 })
      .toBuffer();
  const send = async (model: string, image: Buffer, settings?: Record<string, string>) => {
    const { response } = await client.chat.completions
      .create(
        {
          model,
          messages: [
            { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${image.toString('base64')}` } }] },
          ],
        },
        settings ? { headers: settings } : {},
      )
      .withResponse();
    const url = upstream.received.at(-1)!.body.messages[0].content[0].image_url.url as string;
    const id = response.headers.get('x-vlmpress-ids')!;
    const bitstream = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${id}`)).arrayBuffer());
    return { response, url, payload: classicalPayload(bitstream) };
  };

  it('sends the stored AVIF file itself to a backend that reads AVIF, and a copy to one that does not', async () => {
    const image = await photo();
    const avif = await send('reads-avif', image);
    assert.equal(avif.response.headers.get('x-vlmpress-upstream'), 'stored/avif');
    assert.ok(avif.payload, 'the policy stored AVIF');
    assert.equal(avif.url, `data:image/avif;base64,${Buffer.from(avif.payload.file).toString('base64')}`);
    assert.equal(avif.response.headers.get('x-vlmpress-upstream-bytes'), String(avif.payload.file.length));
    const plain = await send('plain', image);
    assert.equal(plain.response.headers.get('x-vlmpress-upstream'), 'reconstruction/webp');
  });

  it('sends a stored WebP file as it is to any backend', async () => {
    const r = await send('plain', await photo(), { 'x-vlmpress-codec': 'webp', 'x-vlmpress-quality': '70' });
    assert.equal(r.response.headers.get('x-vlmpress-upstream'), 'stored/webp');
    // What the answer reports can be sent back and means the same: the same stored bitstream.
    const codec = r.response.headers.get('x-vlmpress-codec')!;
    const quality = r.response.headers.get('x-vlmpress-quality')!;
    assert.deepEqual([codec, quality], ['webp', '70']);
    const again = await send('plain', await photo(), { 'x-vlmpress-codec': codec, 'x-vlmpress-quality': quality });
    assert.equal(again.response.headers.get('x-vlmpress-ids'), r.response.headers.get('x-vlmpress-ids'));
    assert.equal(r.url, `data:image/webp;base64,${Buffer.from(r.payload!.file).toString('base64')}`);
  });
});
