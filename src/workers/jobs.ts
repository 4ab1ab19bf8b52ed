/**
 * The two jobs the gateway runs and the interface of the drivers that run them: the embedded
 * worker-thread pool (no Redis) and BullMQ queues (with Redis). Both execute `processor.ts`, so both
 * modes give the same results.
 */
import type { CodecChoice, CodecErrorCode, EncodeResult, OutputFormat, ResizeRule } from '../codec/index.js';

export interface EncodeJob {
  kind: 'encode';
  /** the image file (JPEG, PNG, WebP, AVIF, GIF, TIFF) */
  image: Uint8Array;
  /** the learned codec (default) or a classical one the policy picked */
  codec?: CodecChoice;
  quality: number;
  maxBytes?: number;
  /** size limits applied before encoding (the receiving model's view of the image) */
  resize: ResizeRule;
  /** also decode the new bitstream to this format in the same job (the proxy forwards it) */
  reconstruction?: OutputFormat;
  /** WebP and JPEG quality of that reconstruction file (default 90) */
  reconstructionQuality?: number;
  /**
   * The bytes the client sent for this image. When the reconstruction file is larger and the image
   * was downscaled, the job also encodes the downscaled original the same way (`clientCopy`), for the
   * proxy to forward instead when that one is smaller than what the client sent.
   */
  upstreamLimit?: number;
  deadline?: JobDeadline;
}

/**
 * Epoch milliseconds after which nobody will read a job's result: the request's own deadline or the
 * job timeout, whichever comes first. It travels with the job (thread or queue); a job not started by
 * then is dropped, one under way stops at its next safe point (the codec's StopCheck). In Redis mode
 * the workers' clocks are compared with the gateway's: keep machines on NTP.
 */
export type JobDeadline = number;

/** The client's own image, downscaled to the backend's view and encoded as the reconstruction is. */
export interface ClientCopy {
  image: Uint8Array;
  format: OutputFormat;
  width: number;
  height: number;
}

/** The codec's encode result (minus the provider, reported by readiness) plus what the job adds. */
export interface EncodeJobResult extends Omit<EncodeResult, 'provider'> {
  source: { format: string; width: number; height: number; bytes: number };
  resized: boolean;
  timings: { decodeInputMs: number; encodeMs: number };
  /** when the job asked for it: the bitstream decoded, as the decode job would have */
  reconstruction?: DecodeJobResult;
  /** see EncodeJob.upstreamLimit */
  clientCopy?: ClientCopy;
}

export interface DecodeJob {
  kind: 'decode';
  bitstream: Uint8Array;
  format: OutputFormat;
  /** WebP and JPEG quality (default 90) */
  quality?: number;
  deadline?: JobDeadline;
}

export interface DecodeJobResult {
  image: Uint8Array;
  format: OutputFormat;
  width: number;
  height: number;
  quality: number;
  model: { name: string; id: string };
  timings: { decodeMs: number };
}

export type Job = EncodeJob | DecodeJob;

/** Where a job was when its deadline passed: waiting (dropped, never run) or at a safe point of its run. */
export type ExpiredStage = 'queued' | 'running';

/**
 * Errors cross thread and queue boundaries as plain data, then become CodecErrors again. `expired`:
 * the deadline passed and the job was dropped or stopped; its caller has been answered job_timeout.
 */
export type JobOutcome<T> =
  | { ok: true; value: T }
  | { ok: false; error: { code: CodecErrorCode; message: string; details?: Record<string, unknown> } }
  | { ok: false; expired: ExpiredStage };

/** What the job drivers report about the work itself (the metrics registry listens). */
export interface JobObserver {
  /** a job dropped before it started, or stopped at a safe point, because its deadline had passed */
  expired(queue: 'encode' | 'decode', stage: ExpiredStage): void;
  /** a codec thread spent `seconds` on a job; `abandoned`: nobody read its result */
  worked(queue: 'encode' | 'decode', seconds: number, abandoned: boolean): void;
}

/** Readiness checks by name (models, redis, workers). */
export type RunnerHealth = Record<string, { ok: boolean; detail?: string }>;

/** A codec model package as the job side serves it. */
export interface LoadedModel {
  name: string;
  id: string;
  provider: string;
  levels: number;
  defaultQuality: number;
}

export interface JobRunner {
  readonly mode: 'embedded' | 'redis';
  encode(job: Omit<EncodeJob, 'kind'>): Promise<EncodeJobResult>;
  decode(job: Omit<DecodeJob, 'kind'>): Promise<DecodeJobResult>;
  /** resolves when the codec is loaded wherever jobs run; rejects with the reason when it cannot be */
  ready(): Promise<{ models: LoadedModel[] }>;
  /** what /readyz reports for the job side */
  health(): Promise<RunnerHealth>;
  counts(): Promise<{ waiting: number; active: number }>;
  /** stop accepting jobs, finish the running ones, release resources */
  close(): Promise<void>;
}

export class ShuttingDownError extends Error {
  constructor() {
    super('the gateway is shutting down');
    this.name = 'ShuttingDownError';
  }
}

/** More codec jobs pending in this gateway than VLMPRESS_MAX_PENDING_JOBS allows: shed, do not queue. */
export class OverloadedError extends Error {
  constructor(readonly limit: number) {
    super(`the gateway has ${limit} codec jobs pending already; retry shortly`);
    this.name = 'OverloadedError';
  }
}

export class JobTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the job did not finish within ${timeoutMs} ms`);
    this.name = 'JobTimeoutError';
  }
}

/**
 * Redis lost a job's data (its input before a worker read it, or its outputs before the gateway
 * collected them): what an outage that drops recent writes does. A 503 the client may retry.
 */
export class JobLostError extends Error {
  constructor(what: string) {
    super(`the job's ${what} was lost in Redis (an outage dropped recent writes); retry shortly`);
    this.name = 'JobLostError';
  }
}

/** Redis (queues, store) cannot be reached right now: a 503 the client may retry, not our bug. */
export class RedisUnavailableError extends Error {
  constructor(state: string) {
    super(`Redis is unavailable (${state}); retry shortly`);
    this.name = 'RedisUnavailableError';
  }
}
