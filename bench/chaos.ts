/**
 * Chaos suite: real processes, real faults. Redis mode (redis-server with AOF, fsync always), one
 * gateway and two queue workers take a bounded stream of distinct images while the suite injects a
 * worker SIGKILL in the middle of jobs, a Redis SHUTDOWN and a Redis SIGKILL, a gateway SIGTERM and
 * SIGKILL, and decode bombs; then it checks that every acknowledged bitstream can still be read back
 * intact. An embedded gateway with one codec thread then takes a steady load of new images (fairness:
 * max latency against p99) and jobs that overrun a short timeout (the process must stay alive). Last,
 * /readyz is timed with few and with many stored keys.
 *
 * Prints acknowledged / lost / failed by code / unreachable / hung, recovery times and peak RSS, and
 * exits 1 when an acceptance check fails (a process death nobody caused, a lost or corrupted
 * bitstream, a hung request, an untyped failure, a bomb past 1 GB, starvation, readiness that grows
 * with the keyspace).
 *
 *   npm run build && node dist/bench/chaos.js [--quick] [--steady-seconds 300] [--connections 8] [--keys 1000000]
 *   --quick: the few-minute version run by the test command
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { parseContainer, serialiseContainer } from '../src/codec/container.js';
import { freePort } from '../test/gateway/redis-server.js';
import { FIXTURES, ROOT } from '../test/helpers.js';
import { Codec } from '../src/codec/index.js';
import {
  compressBody,
  failuresByCode,
  imageSource,
  load,
  lostBitstreams,
  pct,
  post,
  Proc,
  setHangMs,
  sleep,
  waitReady,
  type Outcome,
} from './chaos-parts.js';
import { benchArgs } from './cli-args.js';
import { s3Phase } from './chaos-s3.js';
import { metastableRow, type MetastableRow } from './metastable.js';
import { median, table, timed } from './stats.js';

const USAGE =
  'node dist/bench/chaos.js [--quick] [--steady-seconds 300] [--connections 8] [--keys 1000000] [--metastable-only] [--compare-before] [--s3-only]';
const values = benchArgs(USAGE, {
  quick: { type: 'boolean', default: false },
  'steady-seconds': { type: 'string' },
  connections: { type: 'string', default: '8' },
  keys: { type: 'string' },
  'metastable-only': { type: 'boolean', default: false },
  'compare-before': { type: 'boolean', default: false },
  's3-only': { type: 'boolean', default: false },
});
const quick = values.quick;
const steadySeconds = Number(values['steady-seconds'] ?? (quick ? 20 : 300));
const connections = Number(values.connections);
const manyKeys = Number(values.keys ?? (quick ? 200_000 : 1_000_000));

/**
 * The 2048x2048 decode of the flat bitstream, timed in this process before any load (the quicker of
 * two runs): the unit every time limit of the suite is derived from, so its checks are ratios that
 * hold on a busy machine as on an idle one (the machine's other work slows the unit too).
 */
async function quietDecodeMs(bitstream: Buffer): Promise<number> {
  const codec = await Codec.load({ session: { intraOpThreads: 1, executionProviders: ['cpu'] }, maxDecodePixels: 2048 * 2048 });
  try {
    const ms: number[] = [];
    for (let i = 0; i < 2; i++) ms.push((await timed(() => codec.decode(bitstream)))[1]);
    return Math.min(...ms);
  } finally {
    await codec.close();
  }
}

const flatBitstream = await readFile(path.join(FIXTURES, 'flat-2048-q1.vlmp'));
const QUIET_DECODE_MS = await quietDecodeMs(flatBitstream);
/** Redis phase: five quiet decodes (about 15 s on an idle 2-core machine), whatever the machine's load */
const JOB_TIMEOUT_MS = Math.max(15_000, Math.round(5 * QUIET_DECODE_MS));
setHangMs(JOB_TIMEOUT_MS + 15_000);
console.log(`quiet 2048x2048 decode: ${QUIET_DECODE_MS.toFixed(0)} ms; job timeout ${JOB_TIMEOUT_MS} ms`);

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  if (!ok) failures.push(what);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
};

// -- phase 1: Redis mode under faults --------------------------------------------------------------

async function redisPhase(image: (i: number) => Promise<Buffer>, bombs: { flat: Buffer; huge: Buffer }): Promise<Record<string, Proc>> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-chaos-'));
  const redisPort = await freePort();
  const gwPort = await freePort();
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const base = `http://127.0.0.1:${gwPort}`;
  const redis = new Proc(
    'redis',
    'redis-server',
    [
      '--port',
      String(redisPort),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--save',
      '',
      '--enable-debug-command',
      'yes',
    ],
    {},
    /Ready to accept connections/,
  );
  const common = {
    REDIS_URL: redisUrl,
    VLMPRESS_REDIS_PREFIX: 'chaos',
    VLMPRESS_JOB_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
    VLMPRESS_WORKER_THREADS: '1',
    LOG_LEVEL: 'info',
  };
  const gateway = new Proc(
    'gateway',
    process.execPath,
    [path.join(ROOT, 'dist', 'src', 'server', 'main.js')],
    { ...common, PORT: String(gwPort), HOST: '127.0.0.1' },
    /Server listening/,
  );
  const workers = [1, 2].map(
    (n) =>
      new Proc(
        `worker${n}`,
        process.execPath,
        [path.join(ROOT, 'dist', 'src', 'workers', 'worker-main.js')],
        { ...common, VLMPRESS_WORKER_METRICS_PORT: '0' },
        /queue worker ready/,
      ),
  );
  const procs: Record<string, Proc> = { redis, gateway, worker1: workers[0]!, worker2: workers[1]! };
  try {
    await redis.start();
    await Promise.all(workers.map((w) => w.start()));
    await gateway.start();
    await waitReady(base);

    const faults: { name: string; at: number; after: number; recoveredMs?: number }[] = [];
    let stop = false;
    const running = load(
      () => base,
      image,
      () => stop,
      4,
    );
    // A fault's recovery: from its injection to the end of the first acknowledged request that was
    // sent after the fault's action (restarts included) was over.
    const fault = async (name: string, act: () => Promise<void>) => {
      await sleep(quick ? 2_000 : 5_000);
      const at = Date.now();
      await act();
      faults.push({ name, at, after: Date.now() });
      console.log(`-- ${name}`);
    };

    // Requests in flight when a worker dies must still succeed (retried on the other worker).
    const inFlightAtKill: Promise<Outcome>[] = [];
    await fault('worker1 SIGKILL during jobs', async () => {
      // Two slow jobs (learned codec, top quality, 1536x1024: seconds each), so each worker holds one.
      for (let i = 0; i < 2; i++) {
        const big = await sharp(await image(1_000_000 + i))
          .resize(1536, 1024)
          .jpeg({ quality: 90 })
          .toBuffer();
        inFlightAtKill.push(
          post(base, '/compress', Buffer.from(JSON.stringify({ image: big.toString('base64'), quality: 8 })), 'application/json'),
        );
      }
      await sleep(600);
      await workers[0]!.kill('SIGKILL');
      await sleep(1_000);
      await workers[0]!.start();
    });
    await fault('decode bombs: 2048x2048 in 28 KB, and 65535x65535', async () => {
      const flat = await post(base, '/decompress', bombs.flat, 'application/vnd.vlmpress');
      const huge = await post(base, '/decompress', bombs.huge, 'application/vnd.vlmpress');
      check(
        flat.status === 200,
        `2048x2048 bitstream decodes under load (${flat.status} ${flat.code ?? ''}, ${flat.ms.toFixed(0)} ms = ${(flat.ms / QUIET_DECODE_MS).toFixed(1)} x its quiet time)`,
      );
      check(
        huge.status === 413 && huge.code === 'image_too_large',
        `65535x65535 bitstream refused (${huge.status} ${huge.code ?? ''}, ${huge.ms.toFixed(0)} ms)`,
      );
    });
    await fault('Redis SHUTDOWN, restart after 2 s', async () => {
      await redis.kill('SIGTERM');
      await sleep(2_000);
      await redis.start();
    });
    await fault('Redis SIGKILL, restart after 2 s', async () => {
      await redis.kill('SIGKILL');
      await sleep(2_000);
      await redis.start();
    });
    await fault('gateway SIGTERM (drain), restart', async () => {
      await gateway.kill('SIGTERM');
      await gateway.start();
    });
    await fault('gateway SIGKILL, restart', async () => {
      await gateway.kill('SIGKILL');
      await gateway.start();
    });
    await sleep(quick ? 3_000 : 10_000);
    stop = true;
    const outcomes = await running;
    const killed = await Promise.all(inFlightAtKill);

    // Recovery: from each fault to the first acknowledged request that started after it.
    for (const f of faults) {
      const firstOk = outcomes.filter((o) => o.status === 200 && o.at >= f.after).sort((a, b) => a.at - b.at)[0];
      if (firstOk) f.recoveredMs = firstOk.at + firstOk.ms - f.at;
    }
    // Every acknowledged bitstream must come back byte for byte.
    const acked = [...outcomes, ...killed].filter((o) => o.status === 200 && o.id);
    const lost = await lostBitstreams(base, acked);
    const byCode = failuresByCode(outcomes);
    const hung = outcomes.filter((o) => o.status === 'hung').length;
    const untypedOutcomes = outcomes.filter(
      (o) => typeof o.status === 'number' && o.status !== 200 && (!o.code || o.code === 'internal_error'),
    );
    const untyped = untypedOutcomes.length;
    if (untyped) {
      // Say what they were: the answers, and the gateway's last error log lines.
      for (const o of untypedOutcomes) console.log(`untyped: ${o.status} ${o.code ?? ''} ${o.message ?? ''}`);
      for (const line of gateway.errorLines.slice(-5)) console.log(`gateway error log: ${line}`);
    }
    console.log(
      `\nRedis mode: ${outcomes.length} requests, ${acked.length} acknowledged, ${lost} lost, ${hung} hung; not acknowledged by outcome: ${JSON.stringify(byCode)}`,
    );
    console.log(
      table([
        ['fault', 'injection to first success (s)'],
        ...faults.map((f) => [f.name, f.recoveredMs === undefined ? 'never' : (f.recoveredMs / 1000).toFixed(1)]),
      ]),
    );
    check(lost === 0, `no acknowledged bitstream lost or corrupted (${acked.length} checked)`);
    check(hung === 0, 'no hung request');
    check(untyped === 0, `every failure is a typed 4xx/503 (${untyped} untyped)`);
    check(
      killed.every((o) => o.status === 200 && o.ms < JOB_TIMEOUT_MS),
      `requests in flight at the worker kill succeeded within the job timeout (${killed.map((o) => `${o.status} ${o.ms.toFixed(0)} ms`).join(', ')})`,
    );
    check(
      faults.every((f) => f.recoveredMs !== undefined),
      'service recovered after every fault',
    );

    // Readiness against the size of the keyspace (the bitstreams share the database).
    const time = async () => {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await fetch(`${base}/readyz`);
        ms.push(performance.now() - t0);
      }
      return median(ms);
    };
    const few = await time();
    const populate = spawn('redis-cli', ['-p', String(redisPort), 'DEBUG', 'POPULATE', String(manyKeys), 'chaos:filler']);
    await new Promise((r) => populate.once('exit', r));
    const many = await time();
    console.log(
      `/readyz median: ${few.toFixed(1)} ms with the run's keys, ${many.toFixed(1)} ms with ${manyKeys.toLocaleString('en')} more`,
    );
    check(many < Math.max(5 * few, few + 5), '/readyz time independent of the number of keys');
  } finally {
    await gateway.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    await redis.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
  return procs;
}

// -- phase 2: embedded mode, steady load and overrunning jobs --------------------------------------

/** An embedded-mode gateway (one codec thread, filesystem store in `dir`) with the given job timeout. */
function embeddedGateway(name: string, port: number, dir: string, jobTimeoutMs: number): Proc {
  const env = {
    PORT: String(port),
    HOST: '127.0.0.1',
    VLMPRESS_DATA_DIR: dir,
    VLMPRESS_WORKER_THREADS: '1',
    VLMPRESS_JOB_TIMEOUT_MS: String(jobTimeoutMs),
    LOG_LEVEL: 'info',
  };
  return new Proc(name, process.execPath, [path.join(ROOT, 'dist', 'src', 'server', 'main.js')], env, /Server listening/);
}

async function embeddedPhase(image: (i: number) => Promise<Buffer>, bombs: { flat: Buffer }): Promise<Proc> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-chaos-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const gateway = embeddedGateway('embedded gateway', port, dir, 10000);
  try {
    await gateway.start();
    await waitReady(base);
    const end = Date.now() + steadySeconds * 1000;
    const rss: number[] = [];
    const rssTimer = setInterval(() => rss.push(gateway.rssMb()), 1000);
    const outcomes = await load(
      () => base,
      image,
      () => Date.now() > end,
      connections,
      2_000_000,
      true,
    );
    clearInterval(rssTimer);
    const ok = outcomes.filter((o) => o.status === 200).map((o) => o.ms);
    const p50 = pct(ok, 50);
    const p99 = pct(ok, 99);
    const max = Math.max(...outcomes.map((o) => o.ms));
    const steady = rss.slice(Math.floor(rss.length / 3));
    console.log(
      `\nembedded, ${steadySeconds} s of mixed new-image load (/compress AVIF by policy and learned q4, reconstructions read back) at ${connections} connections, one codec thread: ${outcomes.length} requests (${(outcomes.length / steadySeconds).toFixed(1)}/s), ${outcomes.length - ok.length} not 200; p50 ${p50.toFixed(0)} ms, p99 ${p99.toFixed(0)} ms, max ${max.toFixed(0)} ms (${(max / p99).toFixed(2)} x p99); RSS after warm-up median ${median(steady).toFixed(0)} MB, max ${Math.max(...steady).toFixed(0)} MB`,
    );
    check(ok.length === outcomes.length, 'steady load: every request answered 200');
    check(max <= 3 * p99, 'no starvation: max latency <= 3 x p99');

    // Jobs that overrun: a second gateway whose job timeout is half the quiet 2048x2048 decode. Three
    // such decodes at once: the running one stops at its next tile (9 tiles), the queued ones never
    // start, so the next request waits for at most one tile besides its own work.
    await gateway.kill('SIGTERM');
    const shortMs = Math.max(300, Math.round(QUIET_DECODE_MS / 2));
    const short = embeddedGateway(`embedded gateway (${shortMs} ms job timeout)`, port, dir, shortMs);
    await short.start();
    const alone = await post(base, '/compress', compressBody(await image(3_000_001)), 'application/json');
    const timeouts = await Promise.all([0, 1, 2].map(() => post(base, '/decompress', bombs.flat, 'application/vnd.vlmpress')));
    const after = await post(base, '/compress', compressBody(await image(3_000_000)), 'application/json');
    check(
      timeouts.every((o) => o.status === 503 && o.code === 'job_timeout'),
      `overrunning jobs answered 503 job_timeout (${timeouts.map((o) => `${o.status} ${o.code ?? ''}`).join(', ')})`,
    );
    const tileMs = QUIET_DECODE_MS / 9;
    console.log(
      `after the overrun: the next /compress took ${after.ms.toFixed(0)} ms (alone: ${alone.ms.toFixed(0)} ms; one tile of the quiet decode: ${tileMs.toFixed(0)} ms)`,
    );
    check(
      short.alive() && after.status === 200 && after.ms <= alone.ms + 3 * tileMs,
      'the gateway serves the next request at once after its jobs overran (within its own time plus 3 tiles of the quiet decode)',
    );
    console.log(`peak RSS of the short-timeout gateway (three 2048x2048 decodes): ${short.peakRssMb.toFixed(0)} MB`);
    check(short.peakRssMb < 1024, 'decode bombs stay under 1 GB peak RSS');
    gateway.deaths += short.deaths;
    await short.kill('SIGTERM');
    return gateway;
  } finally {
    await gateway.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

// -- phase 3: metastable failure ------------------------------------------------------------------

/** Twice the capacity, then half: goodput must come back and little thread time may go to work nobody reads. */
async function metastablePhase(): Promise<void> {
  const seconds = quick ? { capacity: 6, before: 8, overload: 15, after: 15 } : { capacity: 10, before: 20, overload: 60, after: 30 };
  // A job timeout of a few requests' work (each costs about 1.5 quiet tiles' time per probe, 3-4 probes).
  const jobTimeoutMs = Math.max(2_000, Math.round(QUIET_DECODE_MS));
  const rows: MetastableRow[] = [];
  for (const mode of ['embedded', 'redis'] as const)
    for (const deadlines of values['compare-before'] ? [true, false] : [true])
      rows.push(await metastableRow({ mode, deadlines, jobTimeoutMs, seconds }));
  console.log(
    `\nmetastable row: one codec thread, /compress of new 512x384 photos (learned codec under a byte budget), job timeout ${jobTimeoutMs} ms; ` +
      `${seconds.before} s at half the capacity, ${seconds.overload} s at twice it, ${seconds.after} s at half again (open loop)`,
  );
  console.log(
    table([
      ['mode', 'deadlines', 'capacity /s', 'goodput before', 'during', 'after', 'recovery (s)', 'abandoned share', 'answers'],
      ...rows.map((r) => [
        r.mode,
        r.deadlines ? 'on' : 'off (before)',
        r.capacity.toFixed(2),
        r.goodput.before.toFixed(2),
        r.goodput.during.toFixed(2),
        r.goodput.after.toFixed(2),
        r.recoverySeconds === null ? 'never' : r.recoverySeconds.toFixed(1),
        Number.isNaN(r.abandonedShare) ? 'n/a (workers cannot tell)' : `${(100 * r.abandonedShare).toFixed(1)} %`,
        JSON.stringify(r.outcomes),
      ]),
    ]),
  );
  for (const r of rows.filter((x) => x.deadlines)) {
    check(
      r.recoverySeconds !== null && r.recoverySeconds <= jobTimeoutMs / 1000 + 3,
      `${r.mode}: goodput back to the half-load level within the job timeout + 3 s after twice the capacity (${r.recoverySeconds ?? 'never'} s)`,
    );
    check(
      r.abandonedShare <= 0.2,
      `${r.mode}: at most a fifth of the thread's time on work nobody read (${(100 * r.abandonedShare).toFixed(1)} %)`,
    );
  }
}

const image = await imageSource();
const flat = flatBitstream;
const huge = Buffer.from(serialiseContainer({ ...parseContainer(flat), width: 65535, height: 65535 }));
const t0 = performance.now();
if (values['s3-only']) {
  const s3Gateway = await s3Phase(image, check, quick);
  check(s3Gateway.deaths === 0, 'the S3-store gateway did not die by itself');
} else if (!values['metastable-only']) {
  const procs = await redisPhase(image, { flat, huge });
  const embedded = await embeddedPhase(image, { flat });
  const s3Gateway = await s3Phase(image, check, quick);
  const all = [...Object.values(procs), embedded, s3Gateway];
  console.log(
    '\n' + table([['process', 'peak RSS (MB)', 'deaths nobody caused'], ...all.map((p) => [p.name, p.peakRssMb.toFixed(0), p.deaths])]),
  );
  const deaths = all.reduce((n, p) => n + p.deaths, 0);
  check(deaths === 0, 'no process died by itself');
  check(
    procs['worker1']!.peakRssMb < 1024 && procs['worker2']!.peakRssMb < 1024,
    'workers stayed under 1 GB peak RSS through the decode bomb',
  );
}
if (!values['s3-only']) await metastablePhase();
console.log(
  `\nchaos suite: ${failures.length ? `${failures.length} check(s) FAILED` : 'all checks passed'} in ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
process.exit(failures.length ? 1 : 0);
