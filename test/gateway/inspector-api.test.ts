/**
 * The API the inspector page and client-side encoders use: GET /policy, POST /policy/decision,
 * POST /bitstreams, and /compress with `profile` and `upstream`. What they report is checked against
 * what really happens: the decision against /compress's, the reported upstream copy against what
 * the proxy sends a real (fake) upstream for the same image.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { parseContainer } from '../../src/codec/container.js';
import { sha256, readShared, ROOT } from '../helpers.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { MODES, startGateway, type TestGateway } from './harness.js';

const KODAK = readShared('data', 'kodak', 'kodim23.png');
const jpeg = readShared('data', 'imagenet-dev', 'n01440764_tench.JPEG');

async function compress(gw: TestGateway, image: Buffer, fields: Record<string, string>): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('image', new Blob([new Uint8Array(image)]), 'image');
  return fetch(`${gw.base}/compress`, { method: 'POST', body: form });
}

const decision = (gw: TestGateway, body: Record<string, unknown>) =>
  fetch(`${gw.base}/policy/decision`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

for (const mode of MODES)
  describe(`inspector API (${mode} mode)`, () => {
    let upstream: FakeUpstream;
    let gw: TestGateway;

    before(async () => {
      upstream = await startFakeUpstream();
      gw = await startGateway(mode, { VLMPRESS_UPSTREAM_URL: upstream.url, VLMPRESS_UPSTREAM_PROFILE: 'openai' });
    });
    after(async () => {
      await gw.close();
      await upstream.close();
    });

    it('GET /policy: the table, its measured curves and the editor package', async () => {
      const p = (await (await fetch(`${gw.base}/policy`)).json()) as {
        editor: { id: string; restoration: boolean; preeditor: boolean };
        defaultTarget: string;
        classes: Record<
          string,
          { targets: Record<string, { codec: string; quality: number }>; curves: Record<string, Record<string, { setting: number }[]>> }
        >;
      };
      const manifest = JSON.parse(readFileSync(path.join(ROOT, 'models', 'vlmp-semantic-avif-v2', 'manifest.json'), 'utf8'));
      assert.deepEqual(p.editor, { name: manifest.name, id: manifest.id, preeditor: false, restoration: true });
      assert.equal(p.defaultTarget, '0.98');
      for (const [cls, entry] of Object.entries(p.classes)) {
        for (const [target, e] of Object.entries(entry.targets)) {
          const measure = target.startsWith('agreement:') ? 'agreement' : 'accuracy';
          const curve = entry.curves[measure]![e.codec];
          assert.ok(
            curve?.some((pt) => pt.setting === e.quality),
            `${cls} ${target}: the choice is a plotted point`,
          );
        }
      }
    });

    it('GET /policy: every codec kind with its scale, and each ladder point encodes on /compress', async () => {
      const p = (await (await fetch(`${gw.base}/policy`)).json()) as {
        codecs: { name: string; harnessName: string; quality: { min: number; max: number; integer: boolean; ladder: number[] } }[];
        classes: Record<string, { targets: Record<string, { codec: string }> }>;
      };
      const doc = (await (await fetch(`${gw.base}/docs/json`)).json()) as {
        paths: Record<
          string,
          { post: { requestBody: { content: Record<string, { schema: { properties: { codec: { enum: string[] } } } }> } } }
        >;
      };
      const names = p.codecs.map((c) => c.name);
      assert.deepEqual(doc.paths['/compress']!.post.requestBody.content['application/json']!.schema.properties.codec.enum, names);
      // Every codec the policy table chooses is a kind the gateway describes.
      for (const entry of Object.values(p.classes))
        for (const e of Object.values(entry.targets))
          assert.ok(
            p.codecs.some((c) => c.harnessName === e.codec),
            e.codec,
          );
      for (const c of p.codecs) {
        const { min, max, integer, ladder } = c.quality;
        assert.ok(
          ladder.every((q) => q >= min && q <= max && (!integer || Number.isInteger(q))),
          c.name,
        );
        // The cheapest and the dearest operating point are requests the gateway takes as they are.
        for (const q of [ladder[0]!, ladder.at(-1)!]) {
          const res = await compress(gw, jpeg, { codec: c.name, quality: String(q) });
          assert.equal(res.status, 200, `${c.name} q${q}: ${await res.clone().text()}`);
          const body = (await res.json()) as { codec: string; quality: number };
          assert.deepEqual([body.codec, body.quality], [c.name, q]);
        }
      }
    });

    it('POST /policy/decision says what /compress then does', async () => {
      const cases: Record<string, string>[] = [
        { profile: 'openai' },
        { profile: 'llava', task: 'ocr' },
        { codec: 'semantic-avif', quality: '40' },
      ];
      for (const fields of cases) {
        const d = (await (await decision(gw, { ...fields, width: 768, height: 512 })).json()) as {
          policy: { codec: string; quality: number };
          size: { width: number; height: number };
          editor: { id: string } | null;
        };
        const c = (await (await compress(gw, KODAK, fields)).json()) as { codec: string; quality: number; width: number; height: number };
        assert.deepEqual([c.codec, c.quality, c.width, c.height], [d.policy.codec, d.policy.quality, d.size.width, d.size.height]);
        assert.equal(d.editor !== null, d.policy.codec === 'semantic-avif');
      }
      const big = (await (await decision(gw, { width: 4000, height: 3000, profile: 'anthropic' })).json()) as {
        size: { width: number; height: number };
        tokens: { original: number; encoded: number };
      };
      assert.ok(big.size.width <= 1568 && big.size.width * big.size.height <= 1_150_000);
      assert.ok(big.tokens.original > big.tokens.encoded);
      const bad = async (body: Record<string, unknown>, status: number, code: string) => {
        const r = await decision(gw, body);
        assert.equal(r.status, status, JSON.stringify(body));
        assert.equal(((await r.json()) as { error: { code: string } }).error.code, code);
      };
      await bad({ width: 0, height: 10 }, 400, 'invalid_request');
      await bad({ width: 10 }, 400, 'invalid_request');
      await bad({ width: 10, height: 10, profile: 'nope' }, 400, 'invalid_request');
      await bad({ width: 768, height: 512, profile: 'openai', max_image_tokens: 100 }, 422, 'token_budget_too_small');
    });

    it('/compress with upstream=true reports what the proxy really sends, bytes and tokens', async () => {
      const r = (await (await compress(gw, jpeg, { profile: 'openai', upstream: 'true' })).json()) as {
        tokens: { original: number; encoded: number };
        upstream: { what: string; format: string; bytes: number; tokens: number };
      };
      const client = new OpenAI({ apiKey: 'k', baseURL: `${gw.base}/v1`, maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({
          model: 'fake-vlm',
          messages: [
            { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${jpeg.toString('base64')}` } }] },
          ],
        })
        .withResponse();
      const sent: string = upstream.received.at(-1)!.body.messages[0].content[0].image_url.url;
      const sentBytes = Buffer.from(sent.slice(sent.indexOf(',') + 1), 'base64').length;
      assert.equal(r.upstream.bytes, sentBytes);
      assert.equal(`${r.upstream.what}/${r.upstream.format}`, response.headers.get('x-vlmpress-upstream'));
      assert.equal(r.upstream.tokens, Number(response.headers.get('x-vlmpress-upstream-tokens')));
      assert.equal(r.tokens.original, Number(response.headers.get('x-vlmpress-original-tokens')));
      const plain = (await (await compress(gw, jpeg, { profile: 'openai' })).json()) as Record<string, unknown>;
      assert.equal(plain['upstream'], undefined, 'only when asked');
      const wrong = await compress(gw, jpeg, { upstream: 'maybe' });
      assert.equal(wrong.status, 400);
    });

    it('POST /bitstreams stores a valid client bitstream and reports the copy the proxy forwards; refuses a damaged one', async () => {
      const made = await compress(gw, KODAK, { codec: 'avif', quality: '30' });
      const bitstream = Buffer.from(await (await fetch(`${gw.base}/bitstreams/${(await made.json()).id}`)).arrayBuffer());
      const post = (body: Uint8Array) =>
        fetch(`${gw.base}/bitstreams`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.vlmpress' },
          body: new Uint8Array(body),
        });
      const r = await post(bitstream);
      assert.equal(r.status, 200);
      const stored = (await r.json()) as { id: string; bytes: number; codec: string; width: number; upstream: { bytes: number } };
      assert.equal(stored.id, sha256(bitstream), 'content-addressed: the same id as the gateway gave it');
      assert.deepEqual([stored.bytes, stored.codec, stored.width], [bitstream.length, 'avif', parseContainer(bitstream).width]);
      // The proxy forwards exactly that copy for this bitstream.
      const client = new OpenAI({ apiKey: 'k', baseURL: `${gw.base}/v1`, maxRetries: 0 });
      const { response } = await client.chat.completions
        .create({
          model: 'fake-vlm',
          messages: [
            {
              role: 'user',
              content: [{ type: 'image_url', image_url: { url: `data:application/vnd.vlmpress;base64,${bitstream.toString('base64')}` } }],
            },
          ],
        })
        .withResponse();
      assert.equal(Number(response.headers.get('x-vlmpress-upstream-bytes')), stored.upstream.bytes);

      const damaged = Buffer.from(bitstream);
      damaged[damaged.length >> 1]! ^= 0xff;
      const bad = await post(damaged);
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'corrupt_payload');
      assert.equal((await fetch(`${gw.base}/bitstreams/${sha256(damaged)}`)).status, 404, 'nothing stored');
      const empty = await post(new Uint8Array(0));
      assert.equal(empty.status, 400);
    });
  });

describe('inspector files', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway('embedded', { VLMPRESS_API_KEYS: 'k1' });
  });
  after(async () => gw.close());

  it('serves the page and its modules without a key, isolated, and nothing outside its table', async () => {
    const page = await fetch(`${gw.base}/ui`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    assert.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin');
    assert.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp');
    const wasm = await fetch(`${gw.base}/ui/vendor/jsquash-avif/codec/enc/avif_enc.wasm`);
    assert.equal(wasm.headers.get('content-type'), 'application/wasm');
    assert.equal((await fetch(`${gw.base}/ui/lib/codec/container.js`)).status, 200);
    for (const p of ['/ui/lib/codec/codec.js', '/ui/..%2F..%2Fpackage.json', '/ui/vendor/jsquash-avif/package.json'])
      assert.equal((await fetch(`${gw.base}${p}`)).status, 404, p);
    assert.equal((await fetch(`${gw.base}/policy`)).status, 401, 'the API still needs the key');
  });
});
