/**
 * The job processor: the CPU-heavy work behind every endpoint, run inside a worker thread (embedded
 * mode) or a BullMQ worker process. Pure codec calls; it never sees HTTP or queues.
 */
import {
  Codec,
  CodecError,
  decodeImage,
  downscale,
  encodeImage,
  Flags,
  isCodecError,
  stopPoint,
  WorkStoppedError,
  type ExecutionProviderName,
  type StopCheck,
} from '../codec/index.js';
import {
  JobTimeoutError,
  type DecodeJob,
  type DecodeJobResult,
  type EncodeJob,
  type EncodeJobResult,
  type Job,
  type JobOutcome,
} from './jobs.js';

export interface ProcessorOptions {
  ortThreads: number;
  executionProviders: ExecutionProviderName[];
  maxPixels: number;
  /** largest size a bitstream may announce (the gateway's own output size) */
  maxDecodePixels: number;
  /** the avifenc command for avif-screen */
  avifenc?: string;
  modelDirs?: string[];
}

let codecPromise: Promise<Codec> | undefined;

export function codecFor(options: ProcessorOptions): Promise<Codec> {
  codecPromise ??= Codec.load({
    session: { intraOpThreads: options.ortThreads, executionProviders: options.executionProviders },
    maxPixels: options.maxPixels,
    maxDecodePixels: options.maxDecodePixels,
    ...(options.avifenc ? { avifenc: options.avifenc } : {}),
    ...(options.modelDirs ? { modelDirs: options.modelDirs } : {}),
  });
  return codecPromise;
}

export async function closeCodec(): Promise<void> {
  const c = codecPromise;
  codecPromise = undefined;
  if (c) await (await c).close();
}

async function encode(codec: Codec, job: EncodeJob, stop: StopCheck): Promise<EncodeJobResult> {
  const t0 = performance.now();
  const input = await decodeImage(job.image, codec.maxPixels);
  const pixels = await downscale(input, job.resize);
  const t1 = performance.now();
  const r = await codec.encodePixels(
    pixels,
    {
      quality: job.quality,
      stop,
      ...(job.codec ? { codec: job.codec } : {}),
      ...(job.maxBytes !== undefined ? { maxBytes: job.maxBytes } : {}),
    },
    input.hadAlpha ? Flags.AlphaFlattened : 0,
  );
  const t2 = performance.now();
  // One pass per image: the reconstruction comes from the same worker, without a second job or a
  // round trip of the bitstream through the gateway.
  const reconstruction = job.reconstruction
    ? await decode(
        codec,
        {
          kind: 'decode',
          bitstream: r.bitstream,
          format: job.reconstruction,
          ...(job.reconstructionQuality !== undefined ? { quality: job.reconstructionQuality } : {}),
        },
        stop,
      )
    : undefined;
  // The upstream copy must not cost more than what the client sent: when the reconstruction file
  // does, the downscaled original (the backend's view of the client's image) may still cost less.
  let clientCopy: EncodeJobResult['clientCopy'];
  if (reconstruction && job.upstreamLimit !== undefined && reconstruction.image.length > job.upstreamLimit && pixels !== input) {
    stopPoint(stop);
    const file = await encodeImage(pixels, reconstruction.format, { quality: job.reconstructionQuality ?? 90 });
    if (file.length < job.upstreamLimit)
      clientCopy = {
        image: new Uint8Array(file.buffer, file.byteOffset, file.length),
        format: reconstruction.format,
        width: pixels.width,
        height: pixels.height,
      };
  }
  return {
    bitstream: r.bitstream,
    bytes: r.bytes,
    bpp: r.bpp,
    quality: r.quality,
    width: r.width,
    height: r.height,
    model: r.model,
    source: { format: input.format, width: input.width, height: input.height, bytes: job.image.length },
    resized: pixels !== input,
    probes: r.probes,
    timings: { decodeInputMs: t1 - t0, encodeMs: t2 - t1 },
    ...(reconstruction ? { reconstruction } : {}),
    ...(clientCopy ? { clientCopy } : {}),
  };
}

async function decode(codec: Codec, job: DecodeJob, stop: StopCheck): Promise<DecodeJobResult> {
  const t0 = performance.now();
  const img = await codec.decode(job.bitstream, { stop });
  stopPoint(stop);
  const file = await encodeImage(img, job.format, job.quality !== undefined ? { quality: job.quality } : {});
  return {
    image: new Uint8Array(file.buffer, file.byteOffset, file.length),
    format: job.format,
    width: img.width,
    height: img.height,
    quality: img.quality,
    model: img.model,
    timings: { decodeMs: performance.now() - t0 },
  };
}

/**
 * Runs a job unless its deadline has passed: one already past is dropped before any work
 * (`expired: 'queued'`), one that passes during the work stops at the codec's next safe point
 * (`expired: 'running'`), so the thread is free for jobs somebody still waits for.
 */
export async function runJob(codec: Codec, job: Job): Promise<JobOutcome<EncodeJobResult | DecodeJobResult>> {
  const { deadline } = job;
  const stop: StopCheck = deadline === undefined ? () => false : () => Date.now() >= deadline;
  if (stop()) return { ok: false, expired: 'queued' };
  try {
    const value = job.kind === 'encode' ? await encode(codec, job, stop) : await decode(codec, job, stop);
    return { ok: true, value };
  } catch (e) {
    if (e instanceof WorkStoppedError) return { ok: false, expired: 'running' };
    if (isCodecError(e)) return { ok: false, error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } };
    throw e;
  }
}

/** The job's value, or its error thrown again: a CodecError, or job_timeout for an expired job. */
export function unwrap<T>(outcome: JobOutcome<unknown>, timeoutMs: number): T {
  if (outcome.ok) return outcome.value as T;
  if ('expired' in outcome) throw new JobTimeoutError(timeoutMs);
  throw new CodecError(outcome.error.code, outcome.error.message, outcome.error.details);
}
