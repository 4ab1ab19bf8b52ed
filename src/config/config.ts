/**
 * Gateway configuration from environment variables, validated once at start-up: every problem is
 * reported together and the process refuses to start rather than run half-configured.
 * The README's "Configuration" table documents each variable.
 */
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_AVIFENC, parseProviderList, type ExecutionProviderName } from '../codec/index.js';
import { RESOLUTION_PROFILES, type ResolutionProfile } from '../policy/resolution.js';
import { LVLM_APIS, readBackendsFile, type BackendSpec, type LvlmApi } from './backends-file.js';

export interface GatewayConfig {
  port: number;
  host: string;
  /** unset: embedded mode (in-process worker threads, filesystem store) */
  redisUrl: string | undefined;
  upstreamUrl: string | undefined;
  upstreamApiKey: string | undefined;
  /** empty: no authentication */
  apiKeys: string[];
  dataDir: string;
  /** request body limit in bytes */
  maxBodyBytes: number;
  /** decoded pixel limit for inputs (decompression bombs) */
  maxPixels: number;
  /** largest size a bitstream may announce to be decoded (default maxSide², what the gateway makes) */
  maxDecodePixels: number;
  /** the avifenc command avif-screen runs (the policy's text encoder; VLMPRESS_AVIFENC, default on the PATH) */
  avifenc: string;
  /** quality used when a request names none and the model ships no policy table */
  defaultQuality: number;
  /** accuracy target when a request names none and the policy table has no default (e.g. 0.98) */
  defaultTarget: string;
  /** a policy table to use instead of the one beside the model package; `none`: no table */
  policyFile: string | undefined;
  /** images are downscaled so that their longer side is at most this before encoding */
  maxSide: number;
  /** embedded mode: worker threads running the codec */
  workerThreads: number;
  /** ONNX Runtime intra-op threads per worker */
  ortThreads: number;
  executionProviders: ExecutionProviderName[];
  jobTimeoutMs: number;
  /**
   * jobs carry their deadline into the codec threads, which drop or stop them once it has passed
   * (default). false: they run to the end after their caller got 503, as before deadlines existed;
   * only for measuring what deadlines save (bench/chaos.ts)
   */
  jobDeadlines: boolean;
  /** codec jobs one gateway process may have pending before it answers 503 overloaded (0 = no limit) */
  maxPendingJobs: number;
  /** Redis mode: attempts per job (crashed or lost workers) and the first retry delay (exponential) */
  jobAttempts: number;
  jobBackoffMs: number;
  /** Redis mode: jobs one worker process runs at once (default: its thread count) */
  workerConcurrency: number;
  /** Redis mode: port of a worker's /metrics, /healthz and /readyz (0 = off) */
  workerMetricsPort: number;
  /** namespace of every Redis key (queues, store, worker heartbeats) */
  redisPrefix: string;
  /** where bitstreams live: the filesystem (default without Redis), Redis (default with it) or an S3-compatible bucket */
  store: 'filesystem' | 'redis' | 's3';
  /** Redis store, and the cache index of the S3 store in Redis: seconds an entry lives after its last write (0 = forever) */
  storeTtlSeconds: number;
  /** S3 store (VLMPRESS_STORE=s3): the bucket; credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY
   * (and AWS_SESSION_TOKEN) when set, else the AWS SDK's standard chain (shared files, web identity, instance role) */
  s3:
    | {
        endpoint: string | undefined;
        region: string;
        bucket: string;
        prefix: string;
        forcePathStyle: boolean;
        credentials: { accessKeyId: string; secretAccessKey: string; sessionToken: string | undefined } | undefined;
      }
    | undefined;
  /** optional JSON file listing several upstream LVLM backends (see docs/backends.md) */
  backendsFile: string | undefined;
  /** the backends that file lists, checked, with their API keys resolved */
  backends: BackendSpec[];
  /** resolution profile of the one-backend shortcut (VLMPRESS_UPSTREAM_URL) */
  /** the API the VLMPRESS_UPSTREAM_URL backend speaks */
  upstreamApi: LvlmApi;
  upstreamProfile: ResolutionProfile;
  /** its image-token budget per image when a request sets none (0: no limit) */
  upstreamMaxImageTokens: number;
  upstreamTimeoutMs: number;
  /** share of proxied requests with images replayed in the background to check their answers (src/shadow) */
  shadowRate: number;
  /** tokens (as backends report them) that replays may spend per hour, per gateway */
  shadowMaxTokensPerHour: number;
  /** image URL fetching: byte cap, timeout, and an allowlist of non-public CIDRs (tests only) */
  fetchMaxBytes: number;
  fetchTimeoutMs: number;
  fetchAllowCidrs: string[];
  /** format of the reconstruction forwarded upstream (WebP: the LVLM APIs take it, and it costs less than PNG) */
  proxyImageFormat: 'png' | 'webp' | 'jpeg';
  /** WebP/JPEG quality of that copy (calibrated: docs/gateway.md, "The upstream copy") */
  proxyImageQuality: number;
  /** images one proxied request may carry */
  proxyMaxImages: number;
  /** bytes of decoded reconstructions kept in memory for repeated images (0 = none kept) */
  decodeCacheBytes: number;
  logLevel: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v ? v : undefined;
  };
  const number = (name: string, def: number, min: number, max: number, integer: boolean): number => {
    const raw = str(name);
    if (raw === undefined) return def;
    const v = Number(raw);
    if (!(integer ? Number.isSafeInteger(v) : Number.isFinite(v)) || v < min || v > max) {
      problems.push(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${raw}"`);
      return def;
    }
    return v;
  };
  const int = (name: string, def: number, min: number, max: number) => number(name, def, min, max, true);
  const num = (name: string, def: number, min: number, max: number) => number(name, def, min, max, false);
  const url = (name: string, protocols: string[]): string | undefined => {
    const raw = str(name);
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (!protocols.includes(u.protocol)) problems.push(`${name} must use ${protocols.join(' or ')}, got "${u.protocol}"`);
      return raw.replace(/\/+$/, '');
    } catch {
      problems.push(`${name} is not a URL: "${raw}"`);
      return undefined;
    }
  };

  let executionProviders: ExecutionProviderName[] = ['cuda', 'cpu'];
  try {
    executionProviders = parseProviderList(str('VLMPRESS_EXECUTION_PROVIDERS') ?? 'cuda,cpu');
  } catch (e) {
    problems.push(`VLMPRESS_EXECUTION_PROVIDERS: ${(e as Error).message}`);
  }
  const oneOf = <T extends string>(name: string, allowed: readonly T[], def: T): T => {
    const raw = str(name);
    if (raw === undefined) return def;
    if (!(allowed as readonly string[]).includes(raw)) {
      problems.push(`${name} must be one of ${allowed.join(', ')}, got "${raw}"`);
      return def;
    }
    return raw as T;
  };
  const list = (name: string) =>
    (str(name) ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean);
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel))
    problems.push(`LOG_LEVEL must be a pino level, got "${logLevel}"`);

  const redisUrl = url('REDIS_URL', ['redis:', 'rediss:']);
  const workerThreads = int('VLMPRESS_WORKER_THREADS', Math.max(1, Math.min(4, os.availableParallelism() - 1)), 1, 256);
  const maxBodyBytes = int('VLMPRESS_MAX_BODY_BYTES', 32 * 2 ** 20, 1024, 2 ** 30);
  const store = oneOf('VLMPRESS_STORE', ['filesystem', 'redis', 's3'] as const, redisUrl ? 'redis' : 'filesystem');
  if (store === 'redis' && !redisUrl) problems.push('VLMPRESS_STORE=redis needs REDIS_URL');
  const s3 = store === 's3' ? s3Settings() : undefined;
  const redisPrefix = str('VLMPRESS_REDIS_PREFIX') ?? 'vlmpress';
  if (!/^[\w.-]{1,64}$/.test(redisPrefix))
    problems.push(`VLMPRESS_REDIS_PREFIX must be 1-64 letters, digits, "_", "." or "-", got "${redisPrefix}"`);
  function s3Settings(): GatewayConfig['s3'] {
    const bucket = str('VLMPRESS_S3_BUCKET');
    if (!bucket) problems.push('VLMPRESS_STORE=s3 needs VLMPRESS_S3_BUCKET');
    else if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) problems.push(`VLMPRESS_S3_BUCKET "${bucket}" is not a valid bucket name`);
    const prefix = str('VLMPRESS_S3_PREFIX') ?? 'vlmpress/';
    if (!/^[\w./-]{0,200}$/.test(prefix))
      problems.push(`VLMPRESS_S3_PREFIX must be letters, digits, "_", ".", "/" or "-", got "${prefix}"`);
    const endpoint = url('VLMPRESS_S3_ENDPOINT', ['http:', 'https:']);
    const accessKeyId = str('AWS_ACCESS_KEY_ID');
    const secretAccessKey = str('AWS_SECRET_ACCESS_KEY');
    if (Boolean(accessKeyId) !== Boolean(secretAccessKey)) problems.push('AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together');
    return {
      endpoint,
      region: str('VLMPRESS_S3_REGION') ?? 'us-east-1',
      bucket: bucket ?? '',
      prefix,
      // Servers other than AWS mostly serve buckets by path, not by host name.
      forcePathStyle: oneOf('VLMPRESS_S3_PATH_STYLE', ['on', 'off'] as const, endpoint ? 'on' : 'off') === 'on',
      credentials: accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey, sessionToken: str('AWS_SESSION_TOKEN') } : undefined,
    };
  }
  const backendsFile = str('VLMPRESS_BACKENDS_FILE');
  const backends = backendsFile ? readBackendsFile(backendsFile, env, problems) : [];
  const upstreamApi = oneOf('VLMPRESS_UPSTREAM_API', LVLM_APIS, 'openai');
  const maxSide = int('VLMPRESS_MAX_SIDE', 2048, 16, 16384);
  const fetchAllowCidrs = list('VLMPRESS_FETCH_ALLOW_CIDRS');
  for (const c of fetchAllowCidrs)
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(c)) problems.push(`VLMPRESS_FETCH_ALLOW_CIDRS: "${c}" is not a CIDR`);
  const config: GatewayConfig = {
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    redisUrl,
    upstreamUrl: url('VLMPRESS_UPSTREAM_URL', ['http:', 'https:']),
    upstreamApiKey: str('VLMPRESS_UPSTREAM_API_KEY'),
    apiKeys: list('VLMPRESS_API_KEYS'),
    dataDir: path.resolve(str('VLMPRESS_DATA_DIR') ?? './data'),
    maxBodyBytes,
    maxPixels: int('VLMPRESS_MAX_PIXELS', 40_000_000, 1, 400_000_000),
    defaultQuality: num('VLMPRESS_DEFAULT_QUALITY', 4, 1, 8),
    policyFile: str('VLMPRESS_POLICY_FILE'),
    defaultTarget: oneOf(
      'VLMPRESS_DEFAULT_TARGET',
      ['0.95', '0.98', '0.99', 'agreement:0.95', 'agreement:0.98', 'agreement:0.99'] as const,
      '0.98',
    ),
    maxSide,
    maxDecodePixels: int('VLMPRESS_MAX_DECODE_PIXELS', maxSide * maxSide, 1, 400_000_000),
    avifenc: str('VLMPRESS_AVIFENC') ?? DEFAULT_AVIFENC,
    workerThreads,
    ortThreads: int('VLMPRESS_ORT_THREADS', 1, 0, 256),
    executionProviders,
    jobTimeoutMs: int('VLMPRESS_JOB_TIMEOUT_MS', 60_000, 100, 3_600_000),
    jobDeadlines: oneOf('VLMPRESS_JOB_DEADLINES', ['on', 'off'] as const, 'on') === 'on',
    maxPendingJobs: int('VLMPRESS_MAX_PENDING_JOBS', 256, 0, 1_000_000),
    jobAttempts: int('VLMPRESS_JOB_ATTEMPTS', 2, 1, 20),
    jobBackoffMs: int('VLMPRESS_JOB_BACKOFF_MS', 500, 0, 600_000),
    workerConcurrency: int('VLMPRESS_WORKER_CONCURRENCY', workerThreads, 1, 1024),
    workerMetricsPort: int('VLMPRESS_WORKER_METRICS_PORT', 9464, 0, 65535),
    redisPrefix,
    store,
    s3,
    storeTtlSeconds: int('VLMPRESS_STORE_TTL_SECONDS', 7 * 24 * 3600, 0, 10 * 365 * 24 * 3600),
    backendsFile,
    backends,
    upstreamApi,
    // A provider's own API bills by its own token rules unless told otherwise.
    upstreamProfile: oneOf('VLMPRESS_UPSTREAM_PROFILE', RESOLUTION_PROFILES, upstreamApi === 'openai' ? 'openai' : upstreamApi),
    upstreamMaxImageTokens: int('VLMPRESS_UPSTREAM_MAX_IMAGE_TOKENS', 0, 0, 1_000_000),
    upstreamTimeoutMs: int('VLMPRESS_UPSTREAM_TIMEOUT_MS', 300_000, 100, 3_600_000),
    shadowRate: num('VLMPRESS_SHADOW_RATE', 0, 0, 1),
    shadowMaxTokensPerHour: int('VLMPRESS_SHADOW_MAX_TOKENS_PER_HOUR', 200_000, 0, 1e12),
    fetchMaxBytes: int('VLMPRESS_FETCH_MAX_BYTES', maxBodyBytes, 1024, 2 ** 30),
    fetchTimeoutMs: int('VLMPRESS_FETCH_TIMEOUT_MS', 10_000, 100, 600_000),
    fetchAllowCidrs,
    proxyMaxImages: int('VLMPRESS_PROXY_MAX_IMAGES', 32, 1, 1000),
    decodeCacheBytes: int('VLMPRESS_DECODE_CACHE_MB', 64, 0, 65536) * 2 ** 20,
    proxyImageFormat: oneOf('VLMPRESS_PROXY_IMAGE_FORMAT', ['png', 'webp', 'jpeg'] as const, 'webp'),
    proxyImageQuality: int('VLMPRESS_PROXY_IMAGE_QUALITY', 90, 1, 100),
    logLevel,
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
