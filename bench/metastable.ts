/**
 * The metastable-failure row of the chaos suite. One codec thread serves new-image /compress
 * requests that each cost several encodes (the learned codec under a byte budget: the budget
 * search's probes are the encode's safe points). The suite measures that capacity, offers half of
 * it, then twice it, then half again, open loop (requests keep coming whatever happens to earlier
 * ones, as real clients' do), and reports goodput (200s per second) before, during and after the
 * overload, how long goodput takes to come back, and what share of the thread's time went to work
 * nobody read (vlmpress_job_abandoned_seconds_total over vlmpress_job_busy_seconds_total).
 *
 * The failure it guards against: work whose caller already got 503 keeps the thread busy, so the
 * requests behind it wait longer and time out too, and the service stays down after the load that
 * caused it has gone. `deadlines: false` runs the gateway as it was before jobs carried deadlines.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { freePort } from '../test/gateway/redis-server.js';
import { ROOT, sharedFile } from '../test/helpers.js';
import { post, Proc, sleep, waitReady, type Outcome } from './chaos-parts.js';

export interface MetastableOptions {
  mode: 'embedded' | 'redis';
  deadlines: boolean;
  jobTimeoutMs: number;
  seconds: { capacity: number; before: number; overload: number; after: number };
}

export interface MetastableRow {
  mode: 'embedded' | 'redis';
  deadlines: boolean;
  /** closed-loop 200s per second with the thread always busy */
  capacity: number;
  goodput: { before: number; during: number; after: number };
  /** from the end of the overload to the first window whose goodput is back to the before level; null: never */
  recoverySeconds: number | null;
  /** NaN where it cannot be measured (Redis mode without deadlines) */
  abandonedShare: number;
  /** answers by status and error code, over the whole open-loop run */
  outcomes: Record<string, number>;
}

/** A distinct 512x384 photo per request (a counter in its first pixels), as JPEG q90. */
async function photos(): Promise<(i: number) => Promise<Buffer>> {
  const { data, info } = await sharp(sharedFile('data', 'kodak', 'kodim23.png'))
    .extract({ left: 64, top: 64, width: 512, height: 384 })
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return (i) => {
    const px = Buffer.from(data);
    for (let k = 0; k < 16; k++) px[k] = (i >> k) & 1 ? 255 : 0;
    return sharp(px, { raw: { width: info.width, height: info.height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
  };
}

/** Learned codec, top quality, under a budget it cannot meet at once: several encodes per request. */
const body = (img: Buffer) => Buffer.from(JSON.stringify({ image: img.toString('base64'), codec: 'learned', quality: 8, max_bytes: 6000 }));

/** Requests sent at `rate` per second for `seconds`, each on its own, whatever the earlier ones do. */
async function openLoop(base: string, photo: (i: number) => Promise<Buffer>, rate: number, seconds: number, first: number) {
  const sent: Promise<Outcome>[] = [];
  const t0 = performance.now();
  for (let k = 0; k < Math.round(rate * seconds); k++) {
    const wait = t0 + (k * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    sent.push(photo(first + k).then((img) => post(base, '/compress', body(img), 'application/json')));
  }
  const left = t0 + seconds * 1000 - performance.now();
  if (left > 0) await sleep(left);
  return sent;
}

/** Sum of a counter's samples (every label set) in a Prometheus text page. */
function counter(page: string, name: string): number {
  let sum = 0;
  for (const m of page.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Starts what the mode needs; returns the gateway's base URL, the page with the thread's metrics, and a stop. */
async function start(o: MetastableOptions): Promise<{ base: string; metrics: () => Promise<string>; stop: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-metastable-'));
  const gwPort = await freePort();
  const env: Record<string, string> = {
    VLMPRESS_WORKER_THREADS: '1',
    VLMPRESS_JOB_TIMEOUT_MS: String(o.jobTimeoutMs),
    VLMPRESS_JOB_DEADLINES: o.deadlines ? 'on' : 'off',
    VLMPRESS_DATA_DIR: dir,
    LOG_LEVEL: 'warn',
  };
  const procs: Proc[] = [];
  let metricsUrl = `http://127.0.0.1:${gwPort}/metrics`;
  if (o.mode === 'redis') {
    const redisPort = await freePort();
    const workerPort = await freePort();
    procs.push(
      new Proc(
        'redis',
        'redis-server',
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--dir', dir],
        {},
        /Ready to accept/,
      ),
    );
    Object.assign(env, { REDIS_URL: `redis://127.0.0.1:${redisPort}`, VLMPRESS_REDIS_PREFIX: 'metastable' });
    procs.push(
      new Proc(
        'worker',
        process.execPath,
        [path.join(ROOT, 'dist', 'src', 'workers', 'worker-main.js')],
        { ...env, VLMPRESS_WORKER_METRICS_PORT: String(workerPort), LOG_LEVEL: 'info' },
        /queue worker ready/,
      ),
    );
    metricsUrl = `http://127.0.0.1:${workerPort}/metrics`;
  }
  procs.push(
    new Proc(
      'gateway',
      process.execPath,
      [path.join(ROOT, 'dist', 'src', 'server', 'main.js')],
      { ...env, PORT: String(gwPort), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
      /Server listening/,
    ),
  );
  for (const p of procs) await p.start();
  const base = `http://127.0.0.1:${gwPort}`;
  await waitReady(base);
  return {
    base,
    metrics: async () => (await fetch(metricsUrl)).text(),
    stop: async () => {
      for (const p of procs.reverse()) await p.kill('SIGTERM');
      if (procs.some((p) => p.deaths)) throw new Error(`a ${o.mode} process died by itself during the metastable row`);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function metastableRow(o: MetastableOptions): Promise<MetastableRow> {
  const photo = await photos();
  const { base, metrics, stop } = await start(o);
  try {
    // Capacity: two connections keep the one thread busy.
    let next = 0;
    const done: Outcome[] = [];
    const until = performance.now() + o.seconds.capacity * 1000;
    await Promise.all(
      [0, 1].map(async () => {
        while (performance.now() < until) done.push(await post(base, '/compress', body(await photo(next++)), 'application/json'));
      }),
    );
    const capacity = done.filter((d) => d.status === 200).length / o.seconds.capacity;
    if (capacity === 0) throw new Error(`no request succeeded while measuring capacity: ${JSON.stringify(done.slice(0, 3))}`);

    const page0 = await metrics();
    const t0 = Date.now();
    const phases: Promise<Outcome>[] = [];
    phases.push(...(await openLoop(base, photo, capacity / 2, o.seconds.before, 100_000)));
    const overloadAt = Date.now();
    phases.push(...(await openLoop(base, photo, 2 * capacity, o.seconds.overload, 200_000)));
    const overloadEnd = Date.now();
    phases.push(...(await openLoop(base, photo, capacity / 2, o.seconds.after, 300_000)));
    const end = Date.now();
    const outcomes = await Promise.all(phases);
    // The thread's last job (maybe abandoned) must be over before its seconds are read.
    await sleep(Math.min(o.jobTimeoutMs, 3_000));
    const page1 = await metrics();

    const okAt = outcomes.filter((r) => r.status === 200).map((r) => r.at + r.ms);
    const rate = (from: number, to: number) => okAt.filter((t) => t >= from && t < to).length / ((to - from) / 1000);
    const before = rate(t0 + 2_000, overloadAt);
    // Recovery: the first 3-s window after the overload whose goodput is back to 80 % of before's.
    let recoverySeconds: number | null = null;
    for (let t = overloadEnd; t + 3_000 <= end; t += 250) {
      if (rate(t, t + 3_000) >= 0.8 * before) {
        recoverySeconds = (t - overloadEnd) / 1000;
        break;
      }
    }
    const busy = counter(page1, 'vlmpress_job_busy_seconds_total') - counter(page0, 'vlmpress_job_busy_seconds_total');
    const abandoned = counter(page1, 'vlmpress_job_abandoned_seconds_total') - counter(page0, 'vlmpress_job_abandoned_seconds_total');
    const byOutcome: Record<string, number> = {};
    for (const r of outcomes) {
      const k = `${r.status}${r.code ? ` ${r.code}` : ''}`;
      byOutcome[k] = (byOutcome[k] ?? 0) + 1;
    }
    return {
      mode: o.mode,
      deadlines: o.deadlines,
      capacity,
      goodput: { before, during: rate(overloadAt, overloadEnd), after: rate(overloadEnd + (end - overloadEnd) / 2, end) },
      recoverySeconds,
      // Without deadlines a queue worker cannot know that a gateway stopped waiting: it cannot count.
      abandonedShare: busy > 0 && (o.mode === 'embedded' || o.deadlines) ? abandoned / busy : NaN,
      outcomes: byOutcome,
    };
  } finally {
    await stop();
  }
}
