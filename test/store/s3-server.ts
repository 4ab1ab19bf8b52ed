/**
 * A real S3 server for the tests and benchmarks: SeaweedFS (`weed server` with its S3 gateway, master,
 * volume and filer in one process), built from the Go module registry by scripts/test.sh into
 * .tools/bin/weed. Each call starts a private one on free ports with a data folder of its own and
 * access keys checked (so refused credentials are a real 403); `kill` and `restart` are for chaos runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { ROOT } from '../helpers.js';

export const WEED = process.env['VLMPRESS_WEED'] ?? path.join(ROOT, '.tools', 'bin', 'weed');

export interface TestS3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** the server's data folder (survives kill and restart) */
  dir: string;
  /** an SDK client with the server's keys */
  client(): S3Client;
  createBucket(name: string): Promise<void>;
  /** the server's recent output */
  log(): string;
  /** CPU seconds the server process has used (user + system, from /proc), for benchmarks */
  cpuSeconds(): number;
  /** SIGKILL, no shutdown */
  kill(): Promise<void>;
  /** start again on the same ports and data; with a secret, the server's key now has that secret
   * (what revoked or rotated credentials look like to a client that still has the old ones) */
  restart(newSecret?: string): Promise<void>;
  close(): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port p with p and p + 10000 free: SeaweedFS serves gRPC on each HTTP port + 10000. */
async function portPair(taken: Set<number>): Promise<number> {
  for (;;) {
    const p = 20000 + Math.floor(Math.random() * 20000);
    if (!taken.has(p) && (await portFree(p)) && (await portFree(p + 10000))) {
      taken.add(p);
      return p;
    }
  }
}

export async function startS3Server(): Promise<TestS3Server> {
  if (!existsSync(WEED)) throw new Error(`no SeaweedFS at ${WEED}: scripts/test.sh builds it (or set VLMPRESS_WEED)`);
  const dir = await mkdtemp(path.join(tmpdir(), 'vlmpress-s3-'));
  const taken = new Set<number>();
  const [master, volume, filer, s3] = [await portPair(taken), await portPair(taken), await portPair(taken), await portPair(taken)];
  const accessKeyId = 'vlmpress-test';
  const secretAccessKey = 'vlmpress-test-secret';
  const config = path.join(dir, 's3.json');
  const writeKeys = (secretKey: string) =>
    writeFile(
      config,
      JSON.stringify({
        identities: [
          { name: 'vlmpress', credentials: [{ accessKey: accessKeyId, secretKey }], actions: ['Admin', 'Read', 'Write', 'List'] },
        ],
      }),
    );
  await writeKeys(secretAccessKey);
  const data = path.join(dir, 'data');
  const endpoint = `http://127.0.0.1:${s3}`;
  let child: ChildProcess | undefined;
  let log = '';

  let secret = secretAccessKey;
  const client = () =>
    new S3Client({
      endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey: secret },
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });

  const start = async () => {
    await mkdir(data, { recursive: true });
    log = '';
    child = spawn(
      WEED,
      [
        'server',
        `-dir=${data}`,
        '-ip=127.0.0.1',
        '-ip.bind=127.0.0.1',
        `-master.port=${master}`,
        '-master.volumeSizeLimitMB=64',
        // a fresh raft state on each start: after a SIGKILL, writes come back in ~17 s instead of ~30 s
        '-master.resumeState=false',
        `-volume.port=${volume}`,
        '-volume.max=16',
        '-filer',
        `-filer.port=${filer}`,
        '-s3',
        `-s3.port=${s3}`,
        `-s3.config=${config}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer) => {
      log = (log + d.toString()).slice(-8000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code, signal) => reject(new Error(`weed exited (${code ?? signal}) before it served S3:\n${log}`))),
    );
    exited.catch(() => {});
    const c = client();
    const end = Date.now() + 90_000;
    try {
      for (;;) {
        const ok = await Promise.race([
          c.send(new ListBucketsCommand({})).then(
            () => true,
            () => false,
          ),
          exited,
        ]);
        if (ok) break;
        if (Date.now() > end) throw new Error(`SeaweedFS did not serve S3 within 90 s:\n${log}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      c.destroy();
    }
  };

  const stop = async (signal: NodeJS.Signals) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill(signal);
    await gone;
  };

  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    dir,
    client,
    async createBucket(name) {
      const c = client();
      try {
        await c.send(new CreateBucketCommand({ Bucket: name }));
      } finally {
        c.destroy();
      }
    },
    log: () => log,
    cpuSeconds: () => {
      const fields = readFileSync(`/proc/${child!.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 1/100 s
    },
    kill: () => stop('SIGKILL'),
    async restart(newSecret) {
      if (newSecret) {
        secret = newSecret;
        await writeKeys(newSecret);
      }
      await start();
    },
    async close() {
      await stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
