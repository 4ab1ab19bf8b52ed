/**
 * The closed loop against LVLM stand-ins (eval/vlmpress_eval/standin.py): a stream of photos
 * (imagenet-dev, "What is in this image?") and of rendered text pages ("Read the text in this image.")
 * through a gateway that shadows a share of its requests, and the same stream through a gateway
 * with the static policy, in the same run. Per agreement target and stream:
 * - when the loop settled: the request after which its quality no longer changed, and that quality;
 * - the agreement of every answer with the stand-in's answer on the original (the bench asks the
 *   stand-in about every original itself), overall and after settling, against the target;
 * - upstream bytes and image tokens against the static policy's;
 * - the replays' tokens.
 * Then the same with a stand-in whose answer never changes: the loop must walk down to the codec's
 * cheapest point and stop there. And the client's p50 latency with shadowing on and off, over the
 * requests before the loop first moved (the same operating point on both gateways).
 *
 *   npm run build && node dist/bench/shadow.js [--photos 300] [--pages 64] [--requests 2000] [--rate 0.1]
 *     [--targets 0.95,0.98] [--receiver mbv1] [--streams general,text] [--constant-requests 1500]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { compareAnswers } from '../src/shadow/agreement.js';
import { ROOT, sharedFile } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { median, table } from './stats.js';

const USAGE =
  'node dist/bench/shadow.js [--photos 300] [--pages 64] [--requests 2000] [--rate 0.1] [--targets 0.95,0.98] [--receiver mbv1] [--streams general,text] [--constant-requests 1500]';
const values = benchArgs(USAGE, {
  photos: { type: 'string', default: '300' },
  pages: { type: 'string', default: '64' },
  requests: { type: 'string', default: '2000' },
  rate: { type: 'string', default: '0.1' },
  targets: { type: 'string', default: '0.95,0.98' },
  receiver: { type: 'string', default: 'mbv1' },
  streams: { type: 'string', default: 'general,text' },
  'constant-requests': { type: 'string', default: '1500' },
});
const PYTHON = path.join(ROOT, '.venv', 'bin', 'python');
const PY_ENV = { ...process.env, PYTHONPATH: `${path.join(ROOT, 'eval')}:${path.join(ROOT, 'training')}` };

/** A Python module started as a process; resolves with its first stdout line. */
async function startPython(args: string[]): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(PYTHON, args, { cwd: path.join(ROOT, 'eval'), env: PY_ENV, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).once('line', resolve);
    proc.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
  return { proc, line };
}

async function startStandIn(args: string[]): Promise<{ proc: ChildProcess; url: string }> {
  const { proc, line } = await startPython(['-m', 'vlmpress_eval.standin', '--port', '0', ...args]);
  return { proc, url: line.replace(/^listening on /, '') };
}

/** A gateway process on a fresh port and data folder; ready once /readyz says so. */
async function startGateway(env: Record<string, string>): Promise<{ proc: ChildProcess; base: string; dir: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-bench-shadow-'));
  const port = 20000 + Math.floor(Math.random() * 5000);
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist', 'src', 'server', 'main.js')], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      VLMPRESS_DATA_DIR: dir,
      VLMPRESS_WORKER_THREADS: '1',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (const end = Date.now() + 120_000; ;) {
    if ((await fetch(`${base}/readyz`).catch(() => null))?.status === 200) break;
    if (Date.now() > end) throw new Error('the gateway did not become ready');
    await new Promise((r) => setTimeout(r, 200));
  }
  return { proc, base, dir };
}

async function stop(p: { proc: ChildProcess; dir?: string }): Promise<void> {
  if (p.proc.exitCode === null) {
    p.proc.kill('SIGTERM');
    await new Promise((r) => p.proc.once('exit', r));
  }
  if (p.dir) await rm(p.dir, { recursive: true, force: true });
}

interface Input {
  name: string;
  url: string;
  bytes: number;
}

async function photoInputs(count: number): Promise<Input[]> {
  const names = (await readdir(sharedFile('data', 'imagenet-dev'))).filter((n) => /\.jpe?g$/i.test(n)).sort();
  const step = Math.max(1, Math.floor(names.length / count));
  const chosen = names.filter((_, i) => i % step === 0).slice(0, count);
  return Promise.all(
    chosen.map(async (n) => {
      const jpeg = await sharp(sharedFile('data', 'imagenet-dev', n))
        .jpeg({ quality: 90 })
        .toBuffer();
      return { name: n, url: `data:image/jpeg;base64,${jpeg.toString('base64')}`, bytes: jpeg.length };
    }),
  );
}

async function pageInputs(count: number, dir: string): Promise<Input[]> {
  // 4 kinds x 4 font sizes per seed
  await startPython(['-m', 'vlmpress_eval.textset', '--out', dir, '--seeds', String(Math.ceil(count / 16))]);
  const names = (await readdir(dir))
    .filter((n) => n.endsWith('.png'))
    .sort()
    .slice(0, count);
  return Promise.all(
    names.map(async (n) => {
      const png = await readFile(path.join(dir, n));
      return { name: n, url: `data:image/png;base64,${png.toString('base64')}`, bytes: png.length };
    }),
  );
}

const QUESTIONS = { general: 'What is in this image?', text: 'Read the text in this image.' } as const;

async function ask(base: string, image: string, question: string, headers: Record<string, string>) {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'standin',
      max_tokens: 200,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: question },
            { type: 'image_url', image_url: { url: image } },
          ],
        },
      ],
    }),
  });
  const body = (await res.json()) as { choices?: { message: { content: string } }[]; error?: unknown };
  if (res.status !== 200) throw new Error(`${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
  return { text: body.choices![0]!.message.content, headers: res.headers, ms: performance.now() - t0 };
}

interface StreamResult {
  label: string;
  /** where the decision changed: request index and the point from there on */
  changes: [number, string][];
  settledAfter: number;
  offline: string;
  final: string;
  agreementAll: number;
  agreementSettled: number | null;
  bytesRatio: number;
  tokensRatio: number;
  checks: number;
  shadowTokens: number;
  p50On: number | null;
  p50Off: number | null;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const metric = (text: string, name: string, match: string) =>
  sum([...text.matchAll(new RegExp(`^${name}\\{[^}]*${match}[^}]*\\} (\\S+)$`, 'gm'))].map((m) => Number(m[1])));

/** One stream through the loop's gateway and the static one, with the answer on every original. */
async function runStream(
  label: string,
  streamClass: string,
  inputs: Input[],
  question: string,
  target: string,
  requests: number,
  standin: string,
): Promise<StreamResult> {
  const loop = await startGateway({
    VLMPRESS_UPSTREAM_URL: standin,
    VLMPRESS_SHADOW_RATE: values.rate,
    VLMPRESS_SHADOW_MAX_TOKENS_PER_HOUR: '1000000000',
  });
  const fixed = await startGateway({ VLMPRESS_UPSTREAM_URL: standin });
  try {
    const headers = { 'x-vlmpress-target': `agreement:${target}` };
    const original = new Map<string, string>();
    const staticCost = new Map<string, { bytes: number; tokens: number; ms: number }>();
    /** the decision for each request of the stream's class, in order */
    const qualities: string[] = [];
    /** whether each request was of the stream's class */
    const classOf: boolean[] = [];
    const agrees: boolean[] = [];
    let loopBytes = 0;
    let loopTokens = 0;
    let fixedBytes = 0;
    let fixedTokens = 0;
    const onMs: number[] = [];
    const offMs: number[] = [];
    let moved = false;
    for (let i = 0; i < requests; i++) {
      const input = inputs[i % inputs.length]!;
      // The stand-in asked about the original directly, as the harness's LVLM client asks it.
      if (!original.has(input.name)) original.set(input.name, (await ask(standin.replace(/\/v1$/, ''), input.url, question, {})).text);
      const got = await ask(loop.base, input.url, question, headers);
      if (!staticCost.has(input.name)) {
        const s = await ask(fixed.base, input.url, question, headers);
        staticCost.set(input.name, {
          bytes: Number(s.headers.get('x-vlmpress-upstream-bytes')),
          tokens: Number(s.headers.get('x-vlmpress-upstream-tokens')),
          ms: s.ms,
        });
        if (!moved) offMs.push(s.ms);
      }
      const policy = got.headers.get('x-vlmpress-policy') ?? '';
      moved ||= policy.startsWith('shadow');
      // Latency on the first pass only: later passes hit the encode cache, which the static gateway is never asked twice.
      if (!moved && i < inputs.length) onMs.push(got.ms);
      // The decision (an image kept as the client sent it because its copy would cost more is not a move of the loop).
      const kept = /upstream=client/.test(policy) ? ' (client images)' : '';
      // The stream's own class: a photo the classifier takes for text is decided (and settles) with text.
      if (new RegExp(`class=${streamClass}\\b`).test(policy))
        qualities.push(`${got.headers.get('x-vlmpress-codec')} ${got.headers.get('x-vlmpress-quality')}${kept}`);
      classOf.push(new RegExp(`class=${streamClass}\\b`).test(policy));
      agrees.push(compareAnswers({ text: original.get(input.name)!, toolCalls: [] }, { text: got.text, toolCalls: [] }).agree);
      loopBytes += Number(got.headers.get('x-vlmpress-upstream-bytes'));
      loopTokens += Number(got.headers.get('x-vlmpress-upstream-tokens'));
      fixedBytes += staticCost.get(input.name)!.bytes;
      fixedTokens += staticCost.get(input.name)!.tokens;
    }
    let settled = qualities.length;
    while (settled > 0 && qualities[settled - 1] === qualities.at(-1)) settled--;
    // As a request index of the whole stream: the settled-th request of the class.
    const indices = classOf.flatMap((mine, i) => (mine ? [i] : []));
    const settledAfter = settled < indices.length ? indices[settled]! : requests;
    const after = agrees.slice(settledAfter);
    const text = await (await fetch(`${loop.base}/metrics`)).text();
    const changes = qualities.flatMap((q, i): [number, string][] => (i === 0 || q !== qualities[i - 1] ? [[indices[i]!, q]] : []));
    return {
      label,
      changes,
      settledAfter,
      offline: qualities[0]!,
      final: qualities.at(-1)!,
      agreementAll: sum(agrees.map(Number)) / agrees.length,
      agreementSettled: after.length ? sum(after.map(Number)) / after.length : null,
      bytesRatio: loopBytes / fixedBytes,
      tokensRatio: loopTokens / fixedTokens,
      checks: metric(text, 'vlmpress_shadow_requests_total', 'outcome="compared"'),
      shadowTokens: metric(text, 'vlmpress_shadow_tokens_total', ''),
      p50On: onMs.length ? median(onMs) : null,
      p50Off: offMs.length ? median(offMs) : null,
    };
  } finally {
    await stop(loop);
    await stop(fixed);
  }
}

async function main(): Promise<void> {
  const streams = values.streams.split(',');
  const pagesDir = await mkdtemp(path.join(tmpdir(), 'vlmpress-bench-pages-'));
  const inputs: Record<string, Input[]> = {};
  if (streams.includes('general')) inputs['general'] = await photoInputs(Number(values.photos));
  if (streams.includes('text')) inputs['text'] = await pageInputs(Number(values.pages), pagesDir);
  const receiverArgs =
    values.receiver.endsWith('.tflite') || values.receiver.endsWith('.onnx')
      ? ['--classifier', values.receiver]
      : ['--receiver', values.receiver];
  const standin = await startStandIn(receiverArgs);
  const constant = await startStandIn(['--constant', 'a photo']);
  const results: StreamResult[] = [];
  try {
    for (const target of values.targets.split(','))
      for (const stream of streams)
        results.push(
          await runStream(
            `${stream} @ ${target}`,
            stream,
            inputs[stream]!,
            QUESTIONS[stream as 'general' | 'text'],
            target,
            Number(values.requests),
            standin.url,
          ),
        );
    for (const stream of streams)
      results.push(
        await runStream(
          `${stream} @ 0.98, constant stand-in`,
          stream,
          inputs[stream]!,
          QUESTIONS[stream as 'general' | 'text'],
          '0.98',
          Number(values['constant-requests']),
          constant.url,
        ),
      );
  } finally {
    await stop(standin);
    await stop(constant);
    await rm(pagesDir, { recursive: true, force: true });
  }
  const f = (x: number | null, d = 3) => (x === null ? '-' : x.toFixed(d));
  console.log(
    `shadow bench: ${values.photos} photos and ${values.pages} text pages cycled, ${values.requests} requests per stream (constant stand-in: ${values['constant-requests']}), shadow rate ${values.rate}, receiver ${values.receiver}, node ${process.version}`,
  );
  console.log(
    table([
      [
        'stream @ target',
        'settled after (request)',
        'offline point',
        'settled point',
        'agreement, all',
        'after settling',
        'upstream bytes / static',
        'image tokens / static',
        'checks',
        'replay tokens',
        'p50 ms shadow on / off',
      ],
      ...results.map((r) => [
        r.label,
        r.settledAfter,
        r.offline,
        r.final,
        f(r.agreementAll),
        f(r.agreementSettled),
        f(r.bytesRatio),
        f(r.tokensRatio),
        r.checks,
        r.shadowTokens,
        `${f(r.p50On, 1)} / ${f(r.p50Off, 1)}`,
      ]),
    ]),
  );
  for (const r of results)
    console.log(
      `${r.label}: ${r.changes.length - 1} changes of point: ${r.changes
        .slice(0, 12)
        .map(([i, q]) => `#${i} ${q}`)
        .join(', ')}${r.changes.length > 12 ? ', ...' : ''}`,
    );
}

await main();
