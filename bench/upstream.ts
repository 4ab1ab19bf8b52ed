/**
 * What images cost where users pay, through the proxy: the 24 Kodak images and 50 imagenet-dev photos
 * as JPEG q90 (a typical client upload), sent once per backend profile to a gateway process with the
 * shipped policy and a fake upstream that records what it receives. Per profile: total bytes the client
 * sent, stored, and sent upstream (counted from the upstream's own requests, checked against the
 * headers), image tokens for the client's images and for what was sent, and, for comparison, what the
 * gateway used to send (the lossless PNG of every reconstruction, read back from the store). The
 * profiles go through the OpenAI chat route; the Anthropic Messages and Gemini rows through their own
 * routes and fakes (`--apis`), each with its API's own profile.
 *
 *   npm run build && node dist/bench/upstream.js [--kodak 24] [--imagenet 50] [--profiles openai,anthropic,gemini,qwen2-vl,llava] [--apis anthropic,gemini]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startFakeUpstream } from '../test/gateway/fake-upstream.js';
import { anthropicImages, startFakeAnthropic } from '../test/gateway/fake-anthropic.js';
import { geminiImages, startFakeGemini } from '../test/gateway/fake-gemini.js';
import { ROOT, sharedFile } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { table } from './stats.js';

const values = benchArgs(
  'node dist/bench/upstream.js [--kodak 24] [--imagenet 50] [--profiles openai,anthropic,gemini,qwen2-vl,llava] [--apis anthropic,gemini]',
  {
    kodak: { type: 'string', default: '24' },
    imagenet: { type: 'string', default: '50' },
    profiles: { type: 'string', default: 'openai,anthropic,gemini,qwen2-vl,llava' },
    apis: { type: 'string', default: 'anthropic,gemini' },
  },
);
const profiles = values.profiles.split(',').filter(Boolean);
const apis = values.apis.split(',').filter(Boolean);
if (apis.some((a) => a !== 'anthropic' && a !== 'gemini')) {
  process.stderr.write('--apis takes anthropic and/or gemini (the OpenAI route is the --profiles rows)\n');
  process.exit(2);
}

/** One row: a route of one API, with a backend of the given profile behind it. */
interface Target {
  label: string;
  /** the request for one JPEG */
  request(jpegBase64: string): { path: string; body: unknown };
  /** the bytes of the image the fake received last */
  forwarded(): Buffer;
}

async function inputs(): Promise<{ name: string; jpeg: Buffer }[]> {
  const kodak = Array.from({ length: Number(values.kodak) }, (_, i) =>
    sharedFile('data', 'kodak', `kodim${String(i + 1).padStart(2, '0')}.png`),
  );
  // Every 14th photo of the 700: a spread over the classes, not the first few.
  const names = (await readdir(sharedFile('data', 'imagenet-dev'))).filter((n) => /\.jpe?g$/i.test(n)).sort();
  const imagenet = names
    .filter((_, i) => i % 14 === 0)
    .slice(0, Number(values.imagenet))
    .map((n) => sharedFile('data', 'imagenet-dev', n));
  return Promise.all(
    [...kodak, ...imagenet].map(async (file) => ({ name: path.basename(file), jpeg: await sharp(file).jpeg({ quality: 90 }).toBuffer() })),
  );
}

async function main(): Promise<void> {
  const upstream = await startFakeUpstream({ models: profiles.map((p) => `m-${p}`) });
  const anthropic = await startFakeAnthropic();
  const gemini = await startFakeGemini();
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-bench-upstream-'));
  const backendsFile = path.join(dir, 'backends.json');
  await writeFile(
    backendsFile,
    JSON.stringify({
      backends: [
        ...profiles.map((p) => ({ name: p, url: upstream.url, profile: p, models: [`m-${p}`] })),
        { name: 'claude', api: 'anthropic', url: anthropic.url, models: ['claude-bench'] },
        { name: 'gem', api: 'gemini', url: gemini.url, models: ['gemini-bench'] },
      ],
    }),
  );
  const question = 'What is in this photo?';
  const targets: Target[] = [
    ...profiles.map((profile): Target => ({
      label: `openai chat, ${profile}`,
      request: (b64) => ({
        path: '/v1/chat/completions',
        body: {
          model: `m-${profile}`,
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: question },
                { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${b64}` } },
              ],
            },
          ],
        },
      }),
      forwarded() {
        const url = upstream.received.at(-1)!.body.messages[0].content[1].image_url.url as string;
        return Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
      },
    })),
    ...(apis.includes('anthropic')
      ? [
          {
            label: 'anthropic messages, anthropic',
            request: (b64: string) => ({
              path: '/v1/messages',
              body: {
                model: 'claude-bench',
                max_tokens: 64,
                messages: [
                  {
                    role: 'user',
                    content: [
                      { type: 'text', text: question },
                      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: b64 } },
                    ],
                  },
                ],
              },
            }),
            forwarded: () => Buffer.from(anthropicImages(anthropic.received.at(-1)!.body)[0].source.data, 'base64'),
          },
        ]
      : []),
    ...(apis.includes('gemini')
      ? [
          {
            label: 'gemini generateContent, gemini',
            request: (b64: string) => ({
              path: '/v1beta/models/gemini-bench:generateContent',
              body: { contents: [{ role: 'user', parts: [{ text: question }, { inline_data: { mime_type: 'image/jpeg', data: b64 } }] }] },
            }),
            forwarded: () => Buffer.from(geminiImages(gemini.received.at(-1)!.body)[0].data, 'base64'),
          },
        ]
      : []),
  ];
  const port = 19000 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const gateway: ChildProcess = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'server', 'main.js')], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      VLMPRESS_DATA_DIR: path.join(dir, 'data'),
      VLMPRESS_BACKENDS_FILE: backendsFile,
      VLMPRESS_WORKER_THREADS: '2',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    for (const end = Date.now() + 120_000; ;) {
      if ((await fetch(`${base}/readyz`).catch(() => null))?.status === 200) break;
      if (Date.now() > end) throw new Error('the gateway did not become ready');
      await new Promise((r) => setTimeout(r, 200));
    }
    const images = await inputs();
    const rows: (string | number)[][] = [
      [
        'route, profile',
        'images',
        'client KiB',
        'stored KiB',
        'PNG copy KiB (before)',
        'upstream KiB (now)',
        'now/client',
        'client tokens',
        'sent tokens',
        'as sent',
      ],
    ];
    for (const target of targets) {
      let client = 0;
      let stored = 0;
      let png = 0;
      let sent = 0;
      let clientTokens = 0;
      let sentTokens = 0;
      let asSent = 0;
      for (const img of images) {
        const { path: route, body } = target.request(img.jpeg.toString('base64'));
        const res = await fetch(`${base}${route}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        if (res.status !== 200) throw new Error(`${img.name} (${target.label}): ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
        const bytes = target.forwarded().length;
        if (String(bytes) !== res.headers.get('x-vlmpress-upstream-bytes'))
          throw new Error(`${img.name}: the header says ${res.headers.get('x-vlmpress-upstream-bytes')} B, the upstream got ${bytes} B`);
        const id = res.headers.get('x-vlmpress-ids')!;
        png += (await (await fetch(`${base}/bitstreams/${id}/image?format=png`)).arrayBuffer()).byteLength;
        client += img.jpeg.length;
        stored += Number(res.headers.get('x-vlmpress-compressed-bytes'));
        sent += bytes;
        clientTokens += Number(res.headers.get('x-vlmpress-original-tokens'));
        sentTokens += Number(res.headers.get('x-vlmpress-upstream-tokens'));
        if (res.headers.get('x-vlmpress-upstream')!.startsWith('client/')) asSent++;
      }
      const kib = (n: number) => Math.round(n / 1024);
      rows.push([
        target.label,
        images.length,
        kib(client),
        kib(stored),
        kib(png),
        kib(sent),
        sent / client,
        clientTokens,
        sentTokens,
        asSent,
      ]);
    }
    console.log(
      `upstream bytes and tokens: ${images.length} images (${values.kodak} Kodak, ${values.imagenet} imagenet-dev) as JPEG q90, the shipped policy, one request per image and row`,
    );
    console.log(table(rows));
    console.log('"as sent": images whose copy would have cost more than the JPEG, forwarded as the client sent them');
  } finally {
    gateway.kill('SIGTERM');
    await new Promise((r) => gateway.once('exit', r));
    await Promise.all([upstream.close(), anthropic.close(), gemini.close()]);
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
