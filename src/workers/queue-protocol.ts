/**
 * What the gateway and the queue workers agree on in Redis mode: queue names, the job payloads and
 * the keys that carry binary data. Images and bitstreams travel as Redis values with a TTL (binary,
 * not base64 in the job hash or the event stream); jobs and events carry only keys and small JSON.
 */
import type { OutputFormat, ResizeRule } from '../codec/index.js';
import type { DecodeJobResult, EncodeJobResult, JobOutcome } from './jobs.js';

export const QUEUES = { encode: 'encode', decode: 'decode' } as const;
export type QueueName = keyof typeof QUEUES;

export interface EncodeQueueData {
  /** Redis key of the input image */
  input: string;
  codec?: 'learned' | 'avif' | 'webp' | 'jpeg';
  quality: number;
  maxBytes?: number;
  resize: ResizeRule;
}

export interface DecodeQueueData {
  /** Redis key of the bitstream */
  input: string;
  format: OutputFormat;
}

/** The job's return value: the result without its binary part, plus the key holding that part. */
export type QueueReturn = JobOutcome<Omit<EncodeJobResult, 'bitstream'> | Omit<DecodeJobResult, 'image'>> & { output?: string };

export function bullPrefix(prefix: string): string {
  return `${prefix}:bull`;
}

export function blobKey(prefix: string, id: string): string {
  return `${prefix}:blob:${id}`;
}

export function workerKey(prefix: string, workerId: string): string {
  return `${prefix}:workers:${workerId}`;
}

/** A worker's heartbeat value: what it serves and how busy it may get. */
export interface WorkerHeartbeat {
  id: string;
  host: string;
  pid: number;
  models: { name: string; id: string; provider: string; levels: number }[];
  concurrency: number;
  startedAt: string;
}

export const HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_TTL_S = 15;

/** How long binary payloads live: long enough for every attempt, short enough not to pile up when nobody collects them. */
export function blobTtlSeconds(jobTimeoutMs: number, attempts: number, backoffMs: number): number {
  return Math.ceil((jobTimeoutMs * (attempts + 1) + backoffMs * 2 ** attempts) / 1000) + 60;
}
