/**
 * Shadow checks through real gateways on loopback: a recording fake LVLM for what the replays send,
 * a stand-in answering from a real classifier (eval/vlmpress_eval/standin.py) for verdicts, and a
 * real Redis for counts shared between gateways.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { RedisEvidence } from '../../src/shadow/evidence.js';
import { closeCodecs, readShared, ROOT } from '../helpers.js';
import { metricValue, startGateway, waitFor, type Mode, type TestGateway } from '../gateway/harness.js';
import { startRecordingServer, type FakeServer } from '../gateway/recording-server.js';
import { anthropicImages, startFakeAnthropic } from '../gateway/fake-anthropic.js';
import { geminiImages, startFakeGemini } from '../gateway/fake-gemini.js';

after(closeCodecs);

/** A fake OpenAI chat server: "a cat" in JSON or SSE, `usage` tokens per answer; replays fail with 503 when `failReplays`. */
function startChatFake(options: { usage?: number; failReplays?: boolean } = {}): Promise<FakeServer> {
  const usage = options.usage ?? 30;
  return startRecordingServer((r, res) => {
    if (r.url !== '/v1/chat/completions') return void res.writeHead(404).end();
    if (options.failReplays && r.headers['x-vlmpress-shadow'])
      return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"busy"}}');
    const message = { role: 'assistant', content: 'A cat.' };
    if (r.body.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, finish: string | null) =>
        `data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: r.body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.end(chunk({ role: 'assistant', content: 'A cat.' }, null) + chunk({}, 'stop') + 'data: [DONE]\n\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        id: 'c',
        object: 'chat.completion',
        created: 1,
        model: r.body.model,
        choices: [{ index: 0, message, finish_reason: 'stop' }],
        usage: { prompt_tokens: usage - 2, completion_tokens: 2, total_tokens: usage },
      }),
    );
  });
}

let photo: string;
before(async () => {
  const png = await sharp(readShared('data', 'kodak', 'kodim23.png'))
    .extract({ left: 200, top: 100, width: 256, height: 192 })
    .png()
    .toBuffer();
  photo = `data:image/png;base64,${png.toString('base64')}`;
});

const chat = (image: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: 'fake-vlm',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'What is in this image?' },
          { type: 'image_url', image_url: { url: image } },
        ],
      },
    ],
    ...extra,
  });

async function send(gw: TestGateway, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
}

interface EvidenceRow {
  backend: string;
  model: string;
  taskClass: string;
  codec: string;
  quality: number;
  n: number;
  agree: number;
}
async function evidence(gw: TestGateway): Promise<EvidenceRow[]> {
  return ((await (await fetch(`${gw.base}/policy`)).json()) as { shadow: { evidence: EvidenceRow[] } }).shadow.evidence;
}
const comparisons = async (gw: TestGateway) => (await evidence(gw)).reduce((n, r) => n + r.n, 0);
const outcome = (gw: TestGateway, what: string) => metricValue(gw, 'vlmpress_shadow_requests_total', `backend="default",outcome="${what}"`);

describe('shadow checks', () => {
  it('replay a sampled request after the client’s answer, twice, deterministic and marked, and count the verdict', async () => {
    const fake = await startChatFake();
    const gw = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: `${fake.url}/v1`, VLMPRESS_SHADOW_RATE: '1' });
    try {
      const body = chat(photo, { stream: true, temperature: 0.7 });
      const shadowed = await send(gw, body);
      const shadowedText = await shadowed.text();
      await waitFor('the verdicts', async () => ((await comparisons(gw)) === 2 ? true : undefined));
      const [client, withOriginal, asSent, probe] = fake.received;
      assert.equal(fake.received.length, 4, 'the request, its two replays and the probe');
      assert.equal(client!.headers['x-vlmpress-shadow'], undefined);
      for (const replay of [withOriginal!, asSent!]) {
        assert.equal(replay.headers['x-vlmpress-shadow'], 'replay');
        assert.equal(replay.body.stream, undefined);
        assert.equal(replay.body.temperature, 0);
        assert.equal(replay.body.seed, 0);
      }
      const imageOf = (r: typeof client) => r!.body.messages[0].content[1].image_url.url as string;
      assert.equal(imageOf(withOriginal), photo, 'the first replay carries the client’s own image');
      assert.equal(imageOf(asSent), imageOf(client), 'the second carries what the client’s request sent');
      assert.notEqual(imageOf(client), photo);
      const row = (await evidence(gw)).find((r) => String(r.quality) === shadowed.headers.get('x-vlmpress-quality'));
      assert.deepEqual([row!.backend, row!.model, row!.n, row!.agree], ['default', 'fake-vlm', 1, 1]);
      assert.equal(row!.codec, shadowed.headers.get('x-vlmpress-codec'));
      assert.equal(await outcome(gw, 'compared'), 1);
      assert.equal(await metricValue(gw, 'vlmpress_shadow_tokens_total', 'backend="default"'), 90);
      // The probe went at the cheapest point of the codec's ladder (nothing is known to fail yet).
      assert.equal(probe!.headers['x-vlmpress-shadow'], 'replay');
      assert.notEqual(imageOf(probe), imageOf(client));
      const ladder = ((await (await fetch(`${gw.base}/policy`)).json()) as any).codecs.find((k: any) => k.name === row!.codec).quality
        .ladder;
      assert.deepEqual(
        (await evidence(gw)).map((r) => [r.quality, r.n]),
        [
          [ladder[0], 1],
          [row!.quality, 1],
        ].sort((a, b) => a[0]! - b[0]!),
      );

      // Opted out: the same answer and the same vlmpress headers, and no replay.
      const plain = await send(gw, body, { 'x-vlmpress-shadow': 'off' });
      assert.equal(await plain.text(), shadowedText);
      for (const [name, value] of shadowed.headers) if (name.startsWith('x-vlmpress-')) assert.equal(plain.headers.get(name), value, name);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(fake.received.length, 5);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('count a failing replay and change nothing else', async () => {
    const fake = await startChatFake({ failReplays: true });
    const gw = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: `${fake.url}/v1`, VLMPRESS_SHADOW_RATE: '1' });
    try {
      const res = await send(gw, chat(photo));
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as any).choices[0].message.content, 'A cat.');
      await waitFor('the failure', async () => ((await outcome(gw, 'failed')) === 1 ? true : undefined));
      assert.deepEqual(await evidence(gw), []);
      assert.equal((await send(gw, chat(photo), { 'x-vlmpress-shadow': 'off' })).status, 200);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  it('stop replaying when the hour’s token allowance is spent', async () => {
    const fake = await startChatFake({ usage: 40 });
    const gw = await startGateway('embedded', {
      VLMPRESS_UPSTREAM_URL: `${fake.url}/v1`,
      VLMPRESS_SHADOW_RATE: '1',
      VLMPRESS_SHADOW_MAX_TOKENS_PER_HOUR: '50',
    });
    try {
      for (let i = 1; i <= 3; i++) {
        assert.equal((await send(gw, chat(photo))).status, 200);
        await waitFor(`check ${i}`, async () =>
          (await outcome(gw, 'compared')) + (await outcome(gw, 'skipped_budget')) === i ? true : undefined,
        );
      }
      // The first check spent 80 of 50: the allowance is gone until an hour has passed.
      assert.equal(await outcome(gw, 'compared'), 1);
      assert.equal(await outcome(gw, 'skipped_budget'), 2);
      assert.equal(fake.received.filter((r) => r.headers['x-vlmpress-shadow']).length, 2);
      const shadow = ((await (await fetch(`${gw.base}/policy`)).json()) as any).shadow;
      assert.equal(shadow.tokensLastHour, 80);
      assert.equal(shadow.maxTokensPerHour, 50);
    } finally {
      await gw.close();
      await fake.close();
    }
  });

  for (const mode of ['embedded', 'redis'] as Mode[])
    it(`keep their counts across a restart, and share them between gateways (${mode} mode)`, async () => {
      const fake = await startChatFake();
      const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-shadow-'));
      const env = {
        VLMPRESS_UPSTREAM_URL: `${fake.url}/v1`,
        VLMPRESS_SHADOW_RATE: '1',
        VLMPRESS_DATA_DIR: dir,
        VLMPRESS_REDIS_PREFIX: `shadow-${process.pid}-${Date.now()}`,
      };
      const check = async (gw: TestGateway, total: number) => {
        assert.equal((await send(gw, chat(photo))).status, 200);
        await waitFor(`${total} comparisons`, async () => ((await comparisons(gw)) === total ? true : undefined));
      };
      try {
        const first = await startGateway(mode, env);
        // Each check counts two verdicts: the request as sent, and the probe.
        await check(first, 2);
        await first.close();
        const second = await startGateway(mode, env);
        try {
          assert.equal(await comparisons(second), 2, 'the counts survived the restart');
          await check(second, 4);
          if (mode === 'redis') {
            // Gateways sharing Redis share the counts.
            const third = await startGateway(mode, { ...env, VLMPRESS_DATA_DIR: await mkdtemp(path.join(tmpdir(), 'vlmpress-shadow-')) });
            try {
              await check(third, 6);
              assert.equal(await comparisons(second), 6);
            } finally {
              await third.close();
            }
          }
        } finally {
          await second.close();
        }
      } finally {
        await fake.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
});

describe('shadow checks against a stand-in LVLM', () => {
  let standin: ChildProcess;
  let url: string;
  before(async () => {
    standin = spawn(path.join(ROOT, '.venv', 'bin', 'python'), ['-m', 'vlmpress_eval.standin', '--receiver', 'mbv1', '--port', '0'], {
      cwd: path.join(ROOT, 'eval'),
      env: { ...process.env, PYTHONPATH: `${path.join(ROOT, 'eval')}:${path.join(ROOT, 'training')}` },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: standin.stdout! }).once('line', resolve);
      standin.once('exit', (code) => reject(new Error(`the stand-in exited with ${code}`)));
    });
    url = line.replace(/^listening on /, '');
  });
  after(() => void standin.kill());

  it('count a verdict from a real classifier’s answers on the original and the compressed photo', async () => {
    const gw = await startGateway('embedded', { VLMPRESS_UPSTREAM_URL: url, VLMPRESS_SHADOW_RATE: '1' });
    try {
      const jpeg = await sharp(readShared('data', 'kodak', 'kodim20.png'))
        .jpeg({ quality: 90 })
        .toBuffer();
      const res = await send(gw, chat(`data:image/jpeg;base64,${jpeg.toString('base64')}`));
      assert.equal(res.status, 200);
      const label = ((await res.json()) as any).choices[0].message.content as string;
      assert.ok(label.length > 0 && !/image/.test(label), label);
      await waitFor('the check', async () => ((await outcome(gw, 'compared')) === 1 ? true : undefined), 60_000);
      await waitFor('its verdicts', async () => ((await comparisons(gw)) === 2 ? true : undefined), 60_000);
      const rows = await evidence(gw);
      assert.deepEqual(
        rows.map((r) => [r.taskClass, r.n]),
        [
          ['general', 1],
          ['general', 1],
        ],
      );
    } finally {
      await gw.close();
    }
  });
});

describe('shadow checks on the Anthropic and Gemini routes', () => {
  it('replay Messages and streamed Gemini requests as deterministic non-streaming ones, and count their verdicts', async () => {
    const anthropic = await startFakeAnthropic();
    const gemini = await startFakeGemini();
    const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-shadow-'));
    const file = path.join(dir, 'backends.json');
    await writeFile(
      file,
      JSON.stringify({
        backends: [
          { name: 'claude', api: 'anthropic', url: anthropic.url, models: ['claude-*'] },
          { name: 'gem', api: 'gemini', url: gemini.url, models: ['gemini-*'] },
        ],
      }),
    );
    const gw = await startGateway('embedded', { VLMPRESS_BACKENDS_FILE: file, VLMPRESS_SHADOW_RATE: '1' });
    try {
      const data = photo.slice(photo.indexOf(',') + 1);
      const message = await fetch(`${gw.base}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
        body: JSON.stringify({
          model: 'claude-test',
          max_tokens: 32,
          stream: true,
          messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data } }] }],
        }),
      });
      assert.equal(message.status, 200);
      await message.text();
      const streamed = await fetch(`${gw.base}/v1beta/models/gemini-test:streamGenerateContent?alt=sse`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ inline_data: { mime_type: 'image/png', data } }] }] }),
      });
      assert.equal(streamed.status, 200);
      await streamed.text();
      await waitFor('four verdicts', async () => ((await comparisons(gw)) === 4 ? true : undefined));
      const marked = (r: { headers: Record<string, unknown> }) => r.headers['x-vlmpress-shadow'] === 'replay';
      const messages = anthropic.received.filter(marked);
      const contents = gemini.received.filter(marked);
      assert.equal(messages.length, 3, 'with the originals, as sent, and the probe');
      assert.equal(contents.length, 3);
      for (const r of messages) {
        assert.equal(r.url, '/v1/messages');
        assert.deepEqual([r.body.stream, r.body.temperature, r.body.max_tokens], [undefined, 0, 32]);
      }
      assert.equal(anthropicImages(messages[0]!.body)[0].source.data, data, 'the client’s own image');
      for (const r of contents) {
        assert.equal(r.url, '/v1beta/models/gemini-test:generateContent');
        assert.deepEqual(r.body.generationConfig, { temperature: 0, seed: 0, candidateCount: 1 });
      }
      assert.equal(geminiImages(contents[0]!.body)[0].data, data);
      const totals = new Map<string, [number, number]>();
      for (const r of await evidence(gw)) {
        const t = totals.get(`${r.backend}/${r.model}`) ?? [0, 0];
        totals.set(`${r.backend}/${r.model}`, [t[0] + r.n, t[1] + r.agree]);
      }
      assert.deepEqual(
        [...totals],
        [
          ['claude/claude-test', [2, 2]],
          ['gem/gemini-test', [2, 2]],
        ],
      );
    } finally {
      await gw.close();
      await Promise.all([anthropic.close(), gemini.close()]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the closed loop in the gateway', () => {
  it('moves a shadowed backend’s decision on the verdicts, back when they turn, and to the client’s own image when nothing keeps the target', async () => {
    const fake = await startChatFake();
    const prefix = `loop-${process.pid}-${Date.now()}`;
    const env = { VLMPRESS_UPSTREAM_URL: `${fake.url}/v1`, VLMPRESS_SHADOW_RATE: '1', VLMPRESS_REDIS_PREFIX: prefix };
    const gw = await startGateway('redis', env);
    const redis = new Redis(gw.redisUrl!);
    try {
      // The requests opt out of checks: the loop still applies to the backend, and no replay adds verdicts.
      const ask = async () => {
        const res = await send(gw, chat(photo), { 'x-vlmpress-shadow': 'off', 'x-vlmpress-target': 'agreement:0.95' });
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        return res.headers;
      };
      const first = await ask();
      assert.match(first.get('x-vlmpress-policy')!, /^policy; class=general/);
      const codec = first.get('x-vlmpress-codec')!;
      const offline = Number(first.get('x-vlmpress-quality'));
      const ladder: number[] = ((await (await fetch(`${gw.base}/policy`)).json()) as any).codecs.find((k: any) => k.name === codec).quality
        .ladder;
      const store = new RedisEvidence(redis, prefix);
      const key = { backend: 'default', model: 'fake-vlm', taskClass: 'general', codec };
      const add = async (quality: number, n: number, agree: boolean) => {
        for (let i = 0; i < n; i++) await store.add(key, quality, agree);
      };
      // 60 agreeing verdicts at the cheapest point certify 0.95 there (Wilson needs 52).
      await add(ladder[0]!, 60, true);
      const moved = await waitFor('the move down', async () => {
        const h = await ask();
        return h.get('x-vlmpress-policy')!.startsWith('shadow;') ? h : undefined;
      });
      assert.equal(Number(moved.get('x-vlmpress-quality')), ladder[0]);
      assert.ok(Number(moved.get('x-vlmpress-compressed-bytes')) < Number(first.get('x-vlmpress-compressed-bytes')));
      // 40 disagreements there: it fails, and the offline choice is back.
      await add(ladder[0]!, 40, false);
      const back = await waitFor('the move back', async () => {
        const h = await ask();
        return h.get('x-vlmpress-policy')!.startsWith('policy;') ? h : undefined;
      });
      assert.equal(Number(back.get('x-vlmpress-quality')), offline);
      // Every point at or above the offline choice fails too: the client's image goes as it came.
      for (const q of ladder.filter((x) => x >= offline)) await add(q, 30, false);
      const original = await waitFor('the client’s image', async () => {
        const h = await ask();
        return h.get('x-vlmpress-upstream')!.startsWith('client/') ? h : undefined;
      });
      assert.equal(original.get('x-vlmpress-upstream'), 'client/png');
      assert.equal(original.get('x-vlmpress-upstream-bytes'), original.get('x-vlmpress-original-bytes'));
      const sent = fake.received.at(-1)!.body.messages[0].content[1].image_url.url;
      assert.equal(sent, photo, 'the client’s own image, unchanged');
    } finally {
      redis.disconnect();
      await gw.close();
      await fake.close();
    }
  });
});
