/**
 * A real Redis for the tests: the one named by VLMPRESS_TEST_REDIS_URL (scripts/test.sh starts it),
 * or else a private redis-server started here on a free port and stopped when the tests end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

let started: Promise<string> | undefined;
let child: ChildProcess | undefined;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startOwn(): Promise<string> {
  const port = await freePort();
  child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child!.once('error', (e) => reject(new Error(`cannot start redis-server (apt-get install redis-server): ${e.message}`)));
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('Ready to accept connections')) resolve();
    });
    child!.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  process.once('exit', () => child?.kill());
  return `redis://127.0.0.1:${port}`;
}

export function testRedisUrl(): Promise<string> {
  const fromEnv = process.env['VLMPRESS_TEST_REDIS_URL'];
  if (fromEnv) return Promise.resolve(fromEnv);
  started ??= startOwn();
  return started;
}

export function stopOwnRedis(): void {
  child?.kill();
}
