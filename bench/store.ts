/**
 * Bitstream-store benchmark: the same gateway (embedded mode, one codec thread, its own process) on the
 * filesystem store and on the S3 store (a real SeaweedFS on loopback), run alternately in one run.
 * Rows: /compress of new images (distinct photos, 256x256 or --size, so every request encodes and stores) as
 * requests/s and p50/p99, then the read paths with the reconstruction cache off: /bitstreams/<id>
 * (the store alone) and /bitstreams/<id>/image (store read + decode), p50/p99.
 *
 *   npm run build && node dist/bench/store.js [--seconds 20] [--connections 4] [--rounds 2] [--reads 60]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../test/gateway/redis-server.js';
import { ROOT } from '../test/helpers.js';
import { startS3Server } from '../test/store/s3-server.js';
import { get, imageSource, load, pct, Proc, waitReady, type Outcome } from './chaos-parts.js';
import { benchArgs } from './cli-args.js';
import sharp from 'sharp';
import { median, table } from './stats.js';

const values = benchArgs('node dist/bench/store.js [--seconds 20] [--connections 4] [--rounds 2] [--reads 60] [--size 256]', {
  size: { type: 'string', default: '256' },
  seconds: { type: 'string', default: '20' },
  connections: { type: 'string', default: '4' },
  rounds: { type: 'string', default: '2' },
  reads: { type: 'string', default: '60' },
});
const seconds = Number(values.seconds);
const connections = Number(values.connections);

interface Run {
  store: string;
  rps: number;
  compressMs: number[];
  readMs: number[];
  imageMs: number[];
  failed: number;
  /** CPU ms the S3 server used per acknowledged /compress (it shares this machine's cores) */
  s3CpuMsPerImage: number | null;
}

const size = Number(values.size);
const crop = await imageSource();
// Distinct photos at the size asked (the 256x256 crops, resampled): larger ones weigh the codec's time more.
const image = async (i: number) =>
  size === 256
    ? crop(i)
    : sharp(await crop(i))
        .resize(size, size)
        .jpeg({ quality: 90 })
        .toBuffer();
const s3 = await startS3Server();
await s3.createBucket('bench');
let next = 0;

async function run(store: 'fs' | 's3'): Promise<Run> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-store-bench-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    PORT: String(port),
    HOST: '127.0.0.1',
    VLMPRESS_DATA_DIR: dir,
    VLMPRESS_WORKER_THREADS: '1',
    VLMPRESS_DECODE_CACHE_MB: '0',
    LOG_LEVEL: 'info',
    ...(store === 's3'
      ? {
          VLMPRESS_STORE: 's3',
          VLMPRESS_S3_ENDPOINT: s3.endpoint,
          VLMPRESS_S3_BUCKET: 'bench',
          AWS_ACCESS_KEY_ID: s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
        }
      : {}),
  };
  const gateway = new Proc(
    `gateway (${store})`,
    process.execPath,
    [path.join(ROOT, 'dist', 'src', 'server', 'main.js')],
    env,
    /Server listening/,
  );
  try {
    await gateway.start();
    await waitReady(base);
    // Warm-up: codec load and first encodes.
    await load(
      () => base,
      image,
      (() => {
        const end = Date.now() + 3_000;
        return () => Date.now() > end;
      })(),
      1,
      (next += 10_000),
    );
    const end = Date.now() + seconds * 1000;
    const cpu0 = s3.cpuSeconds();
    const t0 = performance.now();
    const outcomes = await load(
      () => base,
      image,
      () => Date.now() > end,
      connections,
      (next += 100_000),
    );
    const elapsed = (performance.now() - t0) / 1000;
    const s3Cpu = s3.cpuSeconds() - cpu0;
    const ok = outcomes.filter((o) => o.status === 200 && o.id);
    const ids = ok.map((o) => o.id!).slice(0, Number(values.reads));
    const reads: Outcome[] = [];
    const images: Outcome[] = [];
    for (const id of ids) {
      reads.push(await get(`${base}/bitstreams/${id}`));
      images.push(await get(`${base}/bitstreams/${id}/image?format=png`));
    }
    return {
      store,
      rps: ok.length / elapsed,
      compressMs: ok.map((o) => o.ms),
      readMs: reads.filter((o) => o.status === 200).map((o) => o.ms),
      imageMs: images.filter((o) => o.status === 200).map((o) => o.ms),
      s3CpuMsPerImage: store === 's3' ? (1000 * s3Cpu) / Math.max(1, ok.length) : null,
      failed: outcomes.length - ok.length + reads.filter((o) => o.status !== 200).length + images.filter((o) => o.status !== 200).length,
    };
  } finally {
    await gateway.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

const runs: Run[] = [];
try {
  for (let r = 0; r < Number(values.rounds); r++)
    for (const store of ['fs', 's3'] as const) {
      runs.push(await run(store));
      process.stderr.write(`round ${r + 1} ${store} done\n`);
    }
} finally {
  await s3.close();
}

const rows: (string | number)[][] = [
  [
    'store',
    'run',
    '/compress new images /s',
    'p50 ms',
    'p99 ms',
    '/bitstreams/<id> p50',
    'p99',
    '/image (cache miss) p50',
    'p99',
    'S3 server CPU ms / image',
    'failed',
  ],
];
runs.forEach((r, i) =>
  rows.push([
    r.store,
    Math.floor(i / 2) + 1,
    r.rps.toFixed(2),
    pct(r.compressMs, 50).toFixed(0),
    pct(r.compressMs, 99).toFixed(0),
    pct(r.readMs, 50).toFixed(1),
    pct(r.readMs, 99).toFixed(1),
    pct(r.imageMs, 50).toFixed(1),
    pct(r.imageMs, 99).toFixed(1),
    r.s3CpuMsPerImage === null ? '' : r.s3CpuMsPerImage.toFixed(1),
    r.failed,
  ]),
);
console.log(
  `one gateway process, embedded mode, one codec thread, ${connections} connections, ${seconds} s per run, ${size}x${size} photos; S3: SeaweedFS on loopback; reconstruction cache off`,
);
console.log(table(rows));
const of = (store: string, f: (r: Run) => number) => median(runs.filter((r) => r.store === store).map(f));
const ratio = of('s3', (r) => r.rps) / of('fs', (r) => r.rps);
console.log(
  `S3 / filesystem: throughput ${ratio.toFixed(3)} (median of runs), /compress p50 ${(of('s3', (r) => pct(r.compressMs, 50)) / of('fs', (r) => pct(r.compressMs, 50))).toFixed(2)}x, read p50 ${(of('s3', (r) => pct(r.readMs, 50)) / of('fs', (r) => pct(r.readMs, 50))).toFixed(2)}x`,
);
