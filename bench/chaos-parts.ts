/**
 * What the chaos suite's phases share: child processes it starts, samples (peak RSS) and kills, and
 * HTTP load with typed outcomes (status, error code, latency; `hung` past the hang limit).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { sharedFile } from '../test/helpers.js';

/** a request with no answer after this long is hung (set from the job timeout the suite derives) */
export let HANG_MS = 30_000;
export function setHangMs(ms: number): void {
  HANG_MS = ms;
}

// -- processes ------------------------------------------------------------------------------------

/** A child process the suite starts, samples (peak RSS from /proc) and may kill; any other exit is a death. */
export class Proc {
  child: ChildProcess | undefined;
  peakRssMb = 0;
  deaths = 0;
  private expected = false;
  private sampler: NodeJS.Timeout | undefined;
  private log = '';
  /** error-level log lines (pino level 50) of every run of the process, the last 20 */
  readonly errorLines: string[] = [];

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly readyLine: RegExp,
  ) {}

  /** the last lines of the current run's output that match `pattern` */
  logLines(pattern: RegExp, n = 3): string[] {
    return this.log
      .split('\n')
      .filter((l) => pattern.test(l))
      .slice(-n);
  }

  async start(): Promise<void> {
    this.expected = false;
    this.log = '';
    const child = spawn(this.command, this.args, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const onData = (d: Buffer) => {
      this.log = (this.log + d.toString()).slice(-20_000);
      for (const line of d.toString().split('\n')) if (line.includes('"level":50')) this.errorLines.push(line.slice(0, 2000));
      this.errorLines.splice(0, Math.max(0, this.errorLines.length - 20));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearInterval(this.sampler);
      if (!this.expected) {
        this.deaths++;
        console.log(`!! ${this.name} died by itself (code ${code}, signal ${signal}):\n${this.log.slice(-3000)}`);
      }
    });
    this.sampler = setInterval(() => this.sample(), 100);
    this.sampler.unref();
    const end = Date.now() + 60_000;
    while (!this.readyLine.test(this.log)) {
      if (child.exitCode !== null || Date.now() > end) throw new Error(`${this.name} did not start:\n${this.log}`);
      await sleep(50);
    }
  }

  /** VmHWM: the peak RSS of the process so far, so short spikes between samples are not missed. */
  private sample(): void {
    const pid = this.child?.pid;
    if (!pid || this.child?.exitCode !== null) return;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) this.peakRssMb = Math.max(this.peakRssMb, Number(m[1]) / 1024);
    } catch {
      // exited between the check and the read
    }
  }

  rssMb(): number {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.child!.pid}/status`, 'utf8'));
      return m ? Number(m[1]) / 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || !this.alive()) return;
    this.sample();
    this.expected = true;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill(signal);
    });
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// -- load -----------------------------------------------------------------------------------------

export interface Outcome {
  status: number | 'unreachable' | 'hung';
  code?: string;
  /** the error message of an untyped failure, to say what it was */
  message?: string;
  ms: number;
  id?: string;
  at: number;
}

/** Distinct photos: a Kodak crop with a counter written into its first pixels, as JPEG q90. */
export async function imageSource(): Promise<(i: number) => Promise<Buffer>> {
  const crops = await Promise.all(
    ['kodim01.png', 'kodim05.png', 'kodim13.png', 'kodim20.png', 'kodim23.png'].map(async (f) => {
      const { data, info } = await sharp(sharedFile('data', 'kodak', f))
        .extract({ left: 128, top: 64, width: 256, height: 256 })
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data, info };
    }),
  );
  return async (i) => {
    const { data, info } = crops[i % crops.length]!;
    const px = Buffer.from(data);
    for (let k = 0; k < 12; k++) px[k] = (i >> (2 * k)) & 3 ? 255 : 0;
    return sharp(px, { raw: { width: info.width, height: info.height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
  };
}

export async function post(base: string, pathname: string, body: Buffer, contentType: string): Promise<Outcome> {
  const t0 = performance.now();
  const at = Date.now();
  try {
    const res = await fetch(`${base}${pathname}`, {
      method: 'POST',
      headers: { 'content-type': contentType },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(HANG_MS),
    });
    const text = await res.text();
    const ms = performance.now() - t0;
    let json: { id?: string; error?: { code?: string; message?: string } } = {};
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      // binary answers (/decompress)
    }
    return {
      status: res.status,
      ms,
      at,
      ...(json.error?.code ? { code: json.error.code } : {}),
      ...(json.error?.code === 'internal_error' ? { message: json.error.message } : {}),
      ...(json.id ? { id: json.id } : {}),
    };
  } catch (e) {
    const ms = performance.now() - t0;
    return { status: (e as Error).name === 'TimeoutError' ? 'hung' : 'unreachable', ms, at };
  }
}

export const compressBody = (img: Buffer) => Buffer.from(JSON.stringify({ image: img.toString('base64') }));

/**
 * `connections` loops posting distinct images until `until()` says stop. Mixed: every third request
 * asks for the learned codec (quality 4) instead of the policy's AVIF, and every third one after an
 * acknowledged compress reads that bitstream's reconstruction back as PNG (a decode job).
 */
export async function load(
  base: () => string,
  image: (i: number) => Promise<Buffer>,
  until: () => boolean,
  conns: number,
  first = 0,
  mixed = false,
): Promise<Outcome[]> {
  const out: Outcome[] = [];
  let next = first;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (!until()) {
        const i = next++;
        const img = await image(i);
        const body = mixed && i % 3 === 1 ? Buffer.from(JSON.stringify({ image: img.toString('base64'), quality: 4 })) : compressBody(img);
        const o = await post(base(), '/compress', body, 'application/json');
        out.push(o);
        if (o.status === 'unreachable') await sleep(50);
        if (mixed && i % 3 === 2 && o.id) out.push(await get(`${base()}/bitstreams/${o.id}/image?format=png`));
      }
    }),
  );
  return out;
}

export async function get(url: string): Promise<Outcome> {
  const t0 = performance.now();
  const at = Date.now();
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(HANG_MS) });
    await res.arrayBuffer();
    return { status: res.status, ms: performance.now() - t0, at };
  } catch (e) {
    return { status: (e as Error).name === 'TimeoutError' ? 'hung' : 'unreachable', ms: performance.now() - t0, at };
  }
}

/** How many acknowledged bitstreams do not come back byte for byte (re-hashed against their id). */
export async function lostBitstreams(base: string, acked: Outcome[]): Promise<number> {
  let lost = 0;
  for (const o of acked) {
    const r = await fetch(`${base}/bitstreams/${o.id}`);
    const body = Buffer.from(await r.arrayBuffer());
    if (r.status !== 200 || createHash('sha256').update(body).digest('hex') !== o.id) lost++;
  }
  return lost;
}

/** Requests that were not acknowledged, counted by `status code` (e.g. `503 store_unavailable`). */
export function failuresByCode(outcomes: Outcome[]): Record<string, number> {
  const byCode: Record<string, number> = {};
  for (const o of outcomes) {
    if (o.status === 200) continue;
    const key = `${o.status} ${o.code ?? ''}`.trim();
    byCode[key] = (byCode[key] ?? 0) + 1;
  }
  return byCode;
}

export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

export async function waitReady(base: string, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const ok = await fetch(`${base}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ok) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`${base} not ready after ${timeoutMs} ms`);
}
