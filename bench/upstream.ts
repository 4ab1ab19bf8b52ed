/**
 * What images cost where users pay, through the proxy: the 24 Kodak images and 50 imagenet-dev photos
 * as JPEG q90 (a typical client upload), sent once per backend profile to a gateway process with the
 * shipped policy and a fake upstream that records what it receives. Per profile: total bytes the client
 * sent, stored, and sent upstream (counted from the upstream's own requests, checked against the
 * headers), image tokens for the client's images and for what was sent, and, for comparison, what the
 * gateway used to send (the lossless PNG of every reconstruction, read back from the store).
 *
 *   npm run build && node dist/bench/upstream.js [--kodak 24] [--imagenet 50] [--profiles openai,anthropic,gemini,qwen2-vl,llava]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { startFakeUpstream } from '../test/gateway/fake-upstream.js';
import { ROOT, sharedFile } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { table } from './stats.js';

const values = benchArgs('node dist/bench/upstream.js [--kodak 24] [--imagenet 50] [--profiles openai,anthropic,gemini,qwen2-vl,llava]', {
  kodak: { type: 'string', default: '24' },
  imagenet: { type: 'string', default: '50' },
  profiles: { type: 'string', default: 'openai,anthropic,gemini,qwen2-vl,llava' },
});
const profiles = values.profiles.split(',');

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
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-bench-upstream-'));
  const backendsFile = path.join(dir, 'backends.json');
  await writeFile(
    backendsFile,
    JSON.stringify({ backends: profiles.map((p) => ({ name: p, url: upstream.url, profile: p, models: [`m-${p}`] })) }),
  );
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
        'profile',
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
    for (const profile of profiles) {
      let client = 0;
      let stored = 0;
      let png = 0;
      let sent = 0;
      let clientTokens = 0;
      let sentTokens = 0;
      let asSent = 0;
      for (const img of images) {
        const url = `data:image/jpeg;base64,${img.jpeg.toString('base64')}`;
        const res = await fetch(`${base}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            model: `m-${profile}`,
            messages: [
              {
                role: 'user',
                content: [
                  { type: 'text', text: 'What is in this photo?' },
                  { type: 'image_url', image_url: { url } },
                ],
              },
            ],
          }),
        });
        if (res.status !== 200) throw new Error(`${img.name} (${profile}): ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
        const forwarded = upstream.received.at(-1)!.body.messages[0].content[1].image_url.url as string;
        const bytes = Buffer.from(forwarded.slice(forwarded.indexOf(',') + 1), 'base64').length;
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
      rows.push([profile, images.length, kib(client), kib(stored), kib(png), kib(sent), sent / client, clientTokens, sentTokens, asSent]);
    }
    console.log(
      `upstream bytes and tokens: ${images.length} images (${values.kodak} Kodak, ${values.imagenet} imagenet-dev) as JPEG q90, the shipped policy, one request per image and profile`,
    );
    console.log(table(rows));
    console.log('"as sent": images whose copy would have cost more than the JPEG, forwarded as the client sent them');
  } finally {
    gateway.kill('SIGTERM');
    await new Promise((r) => gateway.once('exit', r));
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
