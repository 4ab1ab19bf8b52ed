/**
 * The chaos suite's S3 phase: an embedded gateway on the S3 store (a real SeaweedFS, started here)
 * takes a stream of distinct images while the S3 server is SIGKILLed and restarted (once with --quick,
 * twice otherwise). Every
 * acknowledged bitstream must read back intact afterwards (re-hashed), and every request that failed
 * must have failed with a typed answer (503 store_unavailable, not a 500 or a hang).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../test/gateway/redis-server.js';
import { ROOT } from '../test/helpers.js';
import { startS3Server } from '../test/store/s3-server.js';
import { compressBody, failuresByCode, load, lostBitstreams, post, Proc, sleep, waitReady } from './chaos-parts.js';
import { table } from './stats.js';

export async function s3Phase(
  image: (i: number) => Promise<Buffer>,
  check: (ok: boolean, what: string) => void,
  quick: boolean,
): Promise<Proc> {
  const s3 = await startS3Server();
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-chaos-s3-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await s3.createBucket('chaos');
  const gateway = new Proc(
    'gateway (S3 store)',
    process.execPath,
    [path.join(ROOT, 'dist', 'src', 'server', 'main.js')],
    {
      PORT: String(port),
      HOST: '127.0.0.1',
      VLMPRESS_DATA_DIR: dir,
      VLMPRESS_WORKER_THREADS: '1',
      VLMPRESS_STORE: 's3',
      VLMPRESS_S3_ENDPOINT: s3.endpoint,
      VLMPRESS_S3_BUCKET: 'chaos',
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      LOG_LEVEL: 'info',
    },
    /Server listening/,
  );
  try {
    await gateway.start();
    await waitReady(base);
    let stop = false;
    const running = load(
      () => base,
      image,
      () => stop,
      3,
      5_000_000,
    );
    // Faults only once the gateway has stored something (its first encode loads the codec).
    const fresh = (() => {
      let i = 9_000_000;
      return async () => (await post(base, '/compress', compressBody(await image(i++)), 'application/json')).status === 200;
    })();
    const until = async (ok: () => Promise<boolean>, ms: number) => {
      for (const end = Date.now() + ms; Date.now() < end;) if (await ok()) return true;
      return false;
    };
    await until(fresh, 60_000);
    const kills: { at: number; after: number }[] = [];
    for (const downMs of quick ? [2_000] : [2_000, 5_000]) {
      await sleep(quick ? 2_000 : 8_000);
      const at = Date.now();
      await s3.kill();
      console.log(`-- S3 server SIGKILL, restart after ${downMs / 1000} s`);
      await sleep(downMs);
      await s3.restart();
      kills.push({ at, after: Date.now() });
      // SeaweedFS takes writes again some seconds after its restart (about 17 s here).
      await until(fresh, 90_000);
    }
    await sleep(quick ? 3_000 : 10_000);
    stop = true;
    const outcomes = await running;

    const acked = outcomes.filter((o) => o.status === 200 && o.id);
    const lost = await lostBitstreams(base, acked);
    const byCode = failuresByCode(outcomes);
    const untyped = outcomes.filter((o) => o.status !== 200 && !(o.status === 503 && o.code === 'store_unavailable'));
    for (const o of untyped.slice(0, 5)) console.log(`not a typed 503: ${o.status} ${o.code ?? ''} ${o.message ?? ''}`);
    const recovered = kills.map((k) => {
      const first = outcomes.filter((o) => o.status === 200 && o.at >= k.after).sort((a, b) => a.at - b.at)[0];
      return first ? (first.at + first.ms - k.at) / 1000 : null;
    });
    if (acked.length === 0) for (const line of gateway.logLines(/"level":(40|50)/)) console.log(`gateway log: ${line.slice(0, 1500)}`);
    console.log(
      `\nS3 store: ${outcomes.length} requests, ${acked.length} acknowledged, ${lost} lost; not acknowledged by outcome: ${JSON.stringify(byCode)}`,
    );
    console.log(
      table([
        ['fault', 'injection to first success (s)'],
        ...recovered.map((r, i) => [`S3 SIGKILL #${i + 1}`, r === null ? 'never' : r.toFixed(1)]),
      ]),
    );
    check(acked.length > 0 && lost === 0, `S3 store: no acknowledged bitstream lost across S3 kills (${acked.length} re-hashed)`);
    check(untyped.length === 0, `S3 store: every failure is 503 store_unavailable (${untyped.length} others)`);
    check(
      recovered.every((r) => r !== null),
      'S3 store: service recovered after every S3 kill',
    );
    return gateway;
  } finally {
    await gateway.kill('SIGTERM');
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }
}
