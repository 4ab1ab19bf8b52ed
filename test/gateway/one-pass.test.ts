/**
 * One pass per image: a proxied new image is encoded and its reconstruction made by the same job (no
 * separate decode job; the decode cache then serves the next turn), the forwarded pixels equal a
 * decode of the stored bitstream, and identical images arriving together share one encode. Both modes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import sharp from 'sharp';
import { closeCodecs, readShared, sha256, sharedCodec } from '../helpers.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

after(closeCodecs);

async function metric(gw: TestGateway, line: RegExp): Promise<number> {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const m = new RegExp(`^${line.source} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

for (const mode of MODES)
  describe(`one pass per image (${mode} mode)`, () => {
    let upstream: FakeUpstream;
    let gw: TestGateway;
    let client: OpenAI;
    before(async () => {
      upstream = await startFakeUpstream();
      // Lossless copies upstream, so what went can be compared with the bitstream's decode.
      gw = await startGateway(mode, {
        VLMPRESS_UPSTREAM_URL: upstream.url,
        VLMPRESS_POLICY_FILE: 'none',
        VLMPRESS_PROXY_IMAGE_FORMAT: 'png',
      });
      client = new OpenAI({ apiKey: 'k', baseURL: `${gw.base}/v1`, maxRetries: 0 });
    });
    after(async () => {
      await gw.close();
      await upstream.close();
    });

    it('forwards a new image from its encode job, and the next turn from the decode cache', async () => {
      const png = await sharp(readShared('data', 'kodak', 'kodim19.png'))
        .resize(160, 240)
        .png({ compressionLevel: 0 }) // uncompressed: the lossless copy of its reconstruction is smaller
        .toBuffer();
      const ask = () =>
        client.chat.completions
          .create({
            model: 'fake-vlm',
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'what is it?' },
                  { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } },
                ],
              },
            ],
          })
          .withResponse();
      const first = await ask();
      assert.equal(first.response.headers.get('x-vlmpress-ids')?.length, 64);
      assert.equal(await metric(gw, /vlmpress_decode_cache_requests_total\{outcome="miss"\}/), 0, 'no decode job for the new image');
      assert.equal(await metric(gw, /vlmpress_encode_duration_seconds_count/), 1);

      // What went upstream is exactly the stored bitstream's reconstruction.
      const sent = upstream.received.at(-1)!.body.messages[0].content[1].image_url.url as string;
      const forwarded = await sharp(Buffer.from(sent.split(',')[1]!, 'base64'))
        .removeAlpha()
        .raw()
        .toBuffer();
      const id = first.response.headers.get('x-vlmpress-ids')!;
      const bitstream = new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${id}`)).arrayBuffer());
      assert.equal(sha256(forwarded), sha256((await (await sharedCodec()).decode(bitstream)).data));

      await ask();
      assert.equal(await metric(gw, /vlmpress_decode_cache_requests_total\{outcome="hit"\}/), 1, 'the second turn reads the cache');
      assert.equal(await metric(gw, /vlmpress_encode_duration_seconds_count/), 1, 'and encodes nothing');
    });

    it('encodes identical concurrent images once', async () => {
      const jpeg = await sharp(readShared('data', 'kodak', 'kodim21.png'))
        .resize(256, 170)
        .jpeg({ quality: 90 })
        .toBuffer();
      const encodesBefore = await metric(gw, /vlmpress_encode_duration_seconds_count/);
      const answers = await Promise.all(
        Array.from({ length: 4 }, () =>
          fetch(`${gw.base}/compress`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ image: jpeg.toString('base64'), quality: 3 }),
          }).then((r) => r.json() as Promise<{ id: string }>),
        ),
      );
      assert.equal(new Set(answers.map((a) => a.id)).size, 1);
      assert.equal((await metric(gw, /vlmpress_encode_duration_seconds_count/)) - encodesBefore, 1);
    });
  });
