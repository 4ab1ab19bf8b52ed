/**
 * What the gateway and the queue workers agree on in Redis mode: queue names, the job payloads and
 * the keys that carry binary data. Images and bitstreams travel as Redis values with a TTL (binary,
 * not base64 in the job hash or the event stream); jobs and events carry only keys and small JSON.
 */
import { createHash } from 'node:crypto';
import type { CodecChoice, OutputFormat, ResizeRule } from '../codec/index.js';
import type { ClientCopy, DecodeJobResult, EncodeJobResult, JobOutcome, LoadedModel } from './jobs.js';

export const QUEUES = { encode: 'encode', decode: 'decode' } as const;
export type QueueName = keyof typeof QUEUES;

export interface EncodeQueueData {
  /** Redis key of the input image */
  input: string;
  codec?: CodecChoice;
  quality: number;
  maxBytes?: number;
  resize: ResizeRule;
  reconstruction?: OutputFormat;
  reconstructionQuality?: number;
  upstreamLimit?: number;
  /** epoch ms after which nobody reads the result (JobDeadline); absent from gateways before deadlines */
  deadline?: number;
}

export interface DecodeQueueData {
  /** Redis key of the bitstream */
  input: string;
  format: OutputFormat;
  quality?: number;
  /** see EncodeQueueData.deadline */
  deadline?: number;
}

/** The job's return value: the result without its binary part, plus the key holding that part. */
/** An encode result without its binary parts (the bitstream, the reconstruction's image). */
export type EncodeQueueValue = Omit<EncodeJobResult, 'bitstream' | 'reconstruction' | 'clientCopy'> & {
  reconstruction?: Omit<DecodeJobResult, 'image'>;
  clientCopy?: Omit<ClientCopy, 'image'>;
};

export type QueueReturn = JobOutcome<EncodeQueueValue | Omit<DecodeJobResult, 'image'>> & {
  output?: string;
  /** encode jobs asked for a reconstruction: the key holding its image */
  reconstructionOutput?: string;
  /** an encode job made a copy of the client's image too: the key holding it */
  clientCopyOutput?: string;
};

/** JSON with object keys sorted, so equal settings give equal text whatever order they were built in. */
function sortedJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${JSON.stringify(k)}:${sortedJson(v)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/**
 * The deduplication id of a job: the same queue, settings and input bytes give the same id on every
 * gateway, so identical jobs in flight at once run once (BullMQ deduplication) and share the result.
 */
export function jobDedupId(queue: QueueName, settings: Record<string, unknown>, input: Uint8Array): string {
  return createHash('sha256').update(queue).update('\0').update(sortedJson(settings)).update('\0').update(input).digest('hex');
}

/** Counts the gateways' requests waiting on one deduplicated job; the last to collect its outputs deletes them. */
export function waitersKey(prefix: string, queue: QueueName, dedupId: string): string {
  return `${prefix}:waiters:${queue}:${dedupId}`;
}

/**
 * KEYS waiters, output, reconstruction output (optional). Reads the outputs and counts this waiter out;
 * the last one deletes them (outputs are image-sized: they must not wait for their TTL).
 */
export const COLLECT_SCRIPT = `local left = redis.call('DECR', KEYS[1])
local out = {}
for i = 2, #KEYS do out[i - 1] = redis.call('GET', KEYS[i]) or false end
if left <= 0 then redis.call('DEL', unpack(KEYS)) end
return out`;

/** KEYS waiters. Counts a waiter out without collecting (it gave up); returns how many still wait. */
export const LEAVE_SCRIPT = `local left = redis.call('DECR', KEYS[1])
if left <= 0 then redis.call('DEL', KEYS[1]) end
return left`;

/** How a worker fails a job whose input is gone: the gateway answers it as lost, not as a bug. */
export const INPUT_LOST = 'expired before the job ran';

export function bullPrefix(prefix: string): string {
  return `${prefix}:bull`;
}

export function blobKey(prefix: string, id: string): string {
  return `${prefix}:blob:${id}`;
}

/**
 * Live workers, readable in O(workers) whatever else the database holds (bitstreams share it): a
 * sorted set of worker ids scored by their last heartbeat (Redis server time, so machines' clocks do
 * not matter) and a hash of what each one serves.
 */
export function workerKeys(prefix: string): { beats: string; info: string } {
  return { beats: `${prefix}:workers:beats`, info: `${prefix}:workers:info` };
}

/** A worker's heartbeat value: what it serves and how busy it may get. */
export interface WorkerHeartbeat {
  id: string;
  host: string;
  pid: number;
  models: LoadedModel[];
  concurrency: number;
  startedAt: string;
}

export const HEARTBEAT_INTERVAL_MS = 2_000;
/** a worker silent this long is dead: readiness stops counting it within a few seconds of a crash */
export const HEARTBEAT_TTL_MS = 6_000;

const NOW_MS = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)";

/** KEYS beats, info; ARGV id, heartbeat JSON, ttl ms. Records the beat and forgets workers past the ttl. */
export const BEAT_SCRIPT = `${NOW_MS}
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(stale) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
return #stale`;

/** KEYS beats, info; ARGV ttl ms. The heartbeats of the workers seen within the ttl. */
export const LIVE_SCRIPT = `${NOW_MS}
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))`;

/**
 * BullMQ lock settings for a job timeout: a crashed worker's lock lapses and the stalled-job check
 * hands its job to another worker well inside the time the gateway waits (at most a third of it),
 * so the retry the docs promise happens while the client still waits. Codec work runs in threads,
 * so a busy worker's event loop keeps renewing its locks (every lockDuration / 2).
 */
export function lockSettings(jobTimeoutMs: number): { lockDuration: number; stalledInterval: number } {
  const lockDuration = Math.min(30_000, Math.max(2_000, Math.round(jobTimeoutMs / 5)));
  return { lockDuration, stalledInterval: Math.max(1_000, Math.round(lockDuration / 2)) };
}

/** How long binary payloads live: long enough for every attempt, short enough not to pile up when nobody collects them. */
export function blobTtlSeconds(jobTimeoutMs: number, attempts: number, backoffMs: number): number {
  return Math.ceil((jobTimeoutMs * (attempts + 1) + backoffMs * 2 ** attempts) / 1000) + 60;
}
