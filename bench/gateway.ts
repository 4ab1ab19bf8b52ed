/**
 * Gateway benchmark with autocannon over real loopback HTTP. The gateway runs as its own process
 * (`npm start`, and `npm run worker` too with --redis), a fake upstream LVLM in this process. Prints
 * requests/s and latency percentiles per scenario; the proxy's overhead is read against the same
 * request sent straight to the fake upstream in the same run, for each API the proxy speaks (OpenAI
 * chat, Anthropic Messages, Gemini generateContent, each against its own fake).
 *
 *   npm run build && node dist/bench/gateway.js [--duration 10] [--connections 8] [--redis redis://127.0.0.1:6379]
 *   --only text: the text-only rows alone (the proxy's own overhead per API, with no codec work around it)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { startFakeUpstream } from '../test/gateway/fake-upstream.js';
import { startFakeAnthropic } from '../test/gateway/fake-anthropic.js';
import { startFakeGemini } from '../test/gateway/fake-gemini.js';
import { ROOT, sharedFile } from '../test/helpers.js';
import { table } from './stats.js';
import { benchArgs } from './cli-args.js';

const USAGE = 'node dist/bench/gateway.js [--duration 10] [--connections 8] [--redis redis://127.0.0.1:6379] [--threads 1] [--only text]';
const values = benchArgs(USAGE, {
  duration: { type: 'string', default: '10' },
  only: { type: 'string' },
  connections: { type: 'string', default: '8' },
  redis: { type: 'string' },
  threads: { type: 'string', default: '1' },
});
const duration = Number(values.duration);
if (values.only !== undefined && values.only !== 'text') {
  process.stderr.write(`--only takes "text" (the text-chat hop alone)\nusage: ${USAGE}\n`);
  process.exit(2);
}
const connections = Number(values.connections);

/** Start a gateway or worker process; it is ready when `probe` says so (logs stay at warn, as in production). */
async function startProcess(script: string, env: Record<string, string>, probe: () => Promise<boolean>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', script)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  const end = Date.now() + 60_000;
  while (!(await probe().catch(() => false))) {
    if (exited !== undefined) throw new Error(`${script} exited with ${exited}`);
    if (Date.now() > end) throw new Error(`${script} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

interface Scenario {
  name: string;
  url: string;
  /** a body per request, cycled (distinct images defeat the encode cache) */
  bodies: string[];
  connections?: number;
}

async function run(s: Scenario): Promise<(string | number)[]> {
  let i = 0;
  const result = await autocannon({
    url: s.url,
    method: 'POST',
    connections: s.connections ?? connections,
    duration,
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: s.bodies[i++ % s.bodies.length] }) }],
  });
  // Requests still in flight when the run ends are cut off and counted as errors by autocannon: at most one per connection.
  const statuses = Object.entries(result.statusCodeStats ?? {})
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, v]) => `${code}x${(v as { count: number }).count}`);
  const failures =
    [result.errors ? `${result.errors} conn` : '', result.timeouts ? `${result.timeouts} timeout` : '', ...statuses]
      .filter(Boolean)
      .join(' ') || '0';
  return [
    s.name,
    result.requests.average,
    result.latency.p50,
    result.latency.p90,
    result.latency.p99,
    result.requests.total,
    failures,
    Number(result.latency.average.toFixed(2)),
  ];
}

async function main(): Promise<void> {
  const upstream = await startFakeUpstream();
  const anthropic = await startFakeAnthropic();
  const gemini = await startFakeGemini();
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-bench-'));
  const backendsFile = path.join(dir, 'backends.json');
  await writeFile(
    backendsFile,
    JSON.stringify({
      backends: [
        { name: 'openai', url: upstream.url, models: ['*'], default: true },
        { name: 'claude', api: 'anthropic', url: anthropic.url, models: ['claude-*'] },
        { name: 'gemini', api: 'gemini', url: gemini.url, models: ['gemini-*'] },
      ],
    }),
  );
  const port = 18000 + Math.floor(Math.random() * 1000);
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    VLMPRESS_DATA_DIR: path.join(dir, 'data'),
    VLMPRESS_BACKENDS_FILE: backendsFile,
    VLMPRESS_WORKER_THREADS: values.threads,
    VLMPRESS_REDIS_PREFIX: `bench-${process.pid}`,
    ...(values.redis ? { REDIS_URL: values.redis } : {}),
  };
  const children: ChildProcess[] = [];
  const redis = values.redis ? new Redis(values.redis) : undefined;
  let redisNote = '';
  try {
    const base = `http://127.0.0.1:${port}`;
    // The gateway is alive first; it is ready once a worker serves it (Redis mode) or its threads are loaded.
    children.push(await startProcess('server/main.js', env, async () => (await fetch(`${base}/healthz`)).ok));
    if (values.redis) children.push(await startProcess('workers/worker-main.js', env, async () => true));
    const end = Date.now() + 60_000;
    while ((await fetch(`${base}/readyz`)).status !== 200) {
      if (Date.now() > end) throw new Error('the gateway did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }

    const textChat = JSON.stringify({ model: 'fake-vlm', messages: [{ role: 'user', content: 'Say something.' }] });
    const textMessage = JSON.stringify({ model: 'claude-bench', max_tokens: 64, messages: [{ role: 'user', content: 'Say something.' }] });
    const textContent = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Say something.' }] }] });
    const rows: (string | number)[][] = [['scenario', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'requests', 'failures', 'mean ms']];
    // Each API's text-only hop: its fake alone, then the same request through the gateway, back to back.
    const hops: { api: string; direct: (string | number)[]; proxied: (string | number)[] }[] = [];
    for (const [api, direct, proxied, body] of [
      ['openai chat', `${upstream.url}/chat/completions`, `${base}/v1/chat/completions`, textChat],
      ['anthropic messages', `${anthropic.url}/v1/messages`, `${base}/v1/messages`, textMessage],
      [
        'gemini generateContent',
        `${gemini.url}/v1beta/models/gemini-bench:generateContent`,
        `${base}/v1beta/models/gemini-bench:generateContent`,
        textContent,
      ],
    ] as const) {
      const d = await run({ name: `${api}: upstream direct, text (baseline)`, url: direct, bodies: [body] });
      const p = await run({ name: `${api}: proxy, text (gateway overhead)`, url: proxied, bodies: [body] });
      rows.push(d, p);
      hops.push({ api, direct: d, proxied: p });
    }
    const header = `gateway benchmark: ${values.redis ? 'redis mode (1 worker process)' : 'embedded mode'}, ${values.threads} codec thread(s), ${connections} connections, ${duration} s per scenario, node ${process.version}`;
    const textSummary = () =>
      hops
        .map(
          ({ api, direct, proxied }) =>
            `${api}: proxy text throughput = ${((proxied[1] as number) / (direct[1] as number)).toFixed(3)} x the upstream alone; latency added: p50 ${((proxied[2] as number) - (direct[2] as number)).toFixed(0)} ms (autocannon's percentiles are whole ms), mean ${((proxied[7] as number) - (direct[7] as number)).toFixed(2)} ms`,
        )
        .join('\n');
    if (values.only === 'text') {
      console.log(`${header}\n${table(rows)}\n${textSummary()}`);
      return;
    }

    // Inputs: 256x256 photo crops at distinct offsets, so every request encodes and every bitstream
    // differs (one-pixel variants would often give the same bitstream and hit the decode cache).
    const photo = sharp(sharedFile('data', 'kodak', 'kodim23.png'));
    const variants: string[] = [];
    for (let v = 0; v < 2000; v++) {
      const left = (v * 37) % (768 - 256);
      const top = (Math.floor(v / 512) * 61 + v * 11) % (512 - 256);
      variants.push((await photo.clone().extract({ left, top, width: 256, height: 256 }).png().toBuffer()).toString('base64'));
    }
    const imageChat = (b64: string) =>
      JSON.stringify({
        model: 'fake-vlm',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is this?' },
              { type: 'image_url', image_url: { url: `data:image/png;base64,${b64}` } },
            ],
          },
        ],
      });

    // What the calibrated policy picks for these proxied images (no quality in the request).
    const probe = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: imageChat(variants[1000]!),
    });
    await probe.arrayBuffer();
    const policyNote = `proxied images: ${probe.headers.get('x-vlmpress-policy')} (${probe.headers.get('x-vlmpress-compressed-bytes')} bytes)`;

    rows.push(
      await run({
        name: '/compress 256x256, cache hit',
        url: `${base}/compress`,
        bodies: [JSON.stringify({ image: variants[0], quality: 4 })],
      }),
    );
    rows.push(
      await run({
        name: '/compress 256x256, new image',
        url: `${base}/compress`,
        bodies: variants.slice(1, 1001).map((image) => JSON.stringify({ image, quality: 4 })),
      }),
    );
    // Redis mode: what one proxied new image costs Redis (commands and bytes in and out, read from
    // INFO around the scenario; heartbeats and BullMQ's own checks are included, a few per second).
    const redisStats = async () => {
      if (!redis) return null;
      const info = await redis.info('stats');
      const read = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
      return { commands: read('total_commands_processed'), bytes: read('total_net_input_bytes') + read('total_net_output_bytes') };
    };
    const before = await redisStats();
    const proxied = await run({
      name: 'proxy, chat with a new 256x256 image',
      url: `${base}/v1/chat/completions`,
      bodies: variants.slice(1001).map(imageChat),
    });
    const after = await redisStats();
    rows.push(proxied);
    if (before && after) {
      const n = proxied[5] as number;
      redisNote = `Redis per proxied new image: ${((after.commands - before.commands) / n).toFixed(1)} commands, ${((after.bytes - before.bytes) / n / 1024).toFixed(1)} KiB in and out (${n} requests)`;
    }
    // A later turn of a conversation: the same image again (stored already). With the decode cache the
    // proxy forwards the kept reconstruction; the same gateway without it (second process) decodes again.
    const repeated = [imageChat(variants[0]!)];
    // One connection: concurrent requests for one image would share a decode even without the cache.
    rows.push(
      await run({
        name: 'proxy, chat repeating a 256x256 image (1 conn)',
        url: `${base}/v1/chat/completions`,
        bodies: repeated,
        connections: 1,
      }),
    );
    const uncachedPort = port + 1000;
    const uncachedEnv = {
      ...env,
      PORT: String(uncachedPort),
      VLMPRESS_DECODE_CACHE_MB: '0',
      VLMPRESS_REDIS_PREFIX: `${env['VLMPRESS_REDIS_PREFIX']}-nocache`,
      VLMPRESS_WORKER_METRICS_PORT: '0',
    };
    const uncachedBase = `http://127.0.0.1:${uncachedPort}`;
    const uncached = await startProcess('server/main.js', uncachedEnv, async () => (await fetch(`${uncachedBase}/healthz`)).ok);
    children.push(uncached);
    if (values.redis) children.push(await startProcess('workers/worker-main.js', uncachedEnv, async () => true));
    while ((await fetch(`${uncachedBase}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 100));
    rows.push(
      await run({
        name: 'same, VLMPRESS_DECODE_CACHE_MB=0 (1 conn)',
        url: `${uncachedBase}/v1/chat/completions`,
        bodies: repeated,
        connections: 1,
      }),
    );
    console.log(header);
    console.log(policyNote);
    if (redisNote) console.log(redisNote);
    console.log(table(rows));
    console.log(textSummary());
    const cachedRps = rows.at(-2)![1] as number;
    const uncachedRps = rows.at(-1)![1] as number;
    console.log(`repeated image: ${(cachedRps / uncachedRps).toFixed(2)} x the throughput with the decode cache than without`);
  } finally {
    for (const c of children.reverse()) {
      c.kill('SIGTERM');
      await new Promise((r) => c.once('exit', r));
    }
    await Promise.all([upstream.close(), anthropic.close(), gemini.close()]);
    redis?.disconnect();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
