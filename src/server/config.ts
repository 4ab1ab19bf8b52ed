/**
 * Gateway configuration from environment variables, validated once at start-up: every problem is
 * reported together and the process refuses to start rather than run half-configured.
 * The README's "Configuration" table documents each variable.
 */
import os from 'node:os';
import path from 'node:path';
import { parseProviderList, type ExecutionProviderName } from '../codec/index.js';

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
  /** quality used when a request names none (until the calibrated policy lands) */
  defaultQuality: number;
  /** images are downscaled so that their longer side is at most this before encoding */
  maxSide: number;
  /** embedded mode: worker threads running the codec */
  workerThreads: number;
  /** ONNX Runtime intra-op threads per worker */
  ortThreads: number;
  executionProviders: ExecutionProviderName[];
  jobTimeoutMs: number;
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
  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) problems.push(`LOG_LEVEL must be a pino level, got "${logLevel}"`);

  const config: GatewayConfig = {
    port: int('PORT', 8080, 0, 65535),
    host: str('HOST') ?? '0.0.0.0',
    redisUrl: url('REDIS_URL', ['redis:', 'rediss:']),
    upstreamUrl: url('VLMPRESS_UPSTREAM_URL', ['http:', 'https:']),
    upstreamApiKey: str('VLMPRESS_UPSTREAM_API_KEY'),
    apiKeys: (str('VLMPRESS_API_KEYS') ?? '').split(',').map((k) => k.trim()).filter(Boolean),
    dataDir: path.resolve(str('VLMPRESS_DATA_DIR') ?? './data'),
    maxBodyBytes: int('VLMPRESS_MAX_BODY_BYTES', 32 * 2 ** 20, 1024, 2 ** 30),
    maxPixels: int('VLMPRESS_MAX_PIXELS', 40_000_000, 1, 400_000_000),
    defaultQuality: num('VLMPRESS_DEFAULT_QUALITY', 4, 1, 8),
    maxSide: int('VLMPRESS_MAX_SIDE', 2048, 16, 16384),
    workerThreads: int('VLMPRESS_WORKER_THREADS', Math.max(1, Math.min(4, os.availableParallelism() - 1)), 1, 256),
    ortThreads: int('VLMPRESS_ORT_THREADS', 1, 0, 256),
    executionProviders,
    jobTimeoutMs: int('VLMPRESS_JOB_TIMEOUT_MS', 60_000, 100, 3_600_000),
    logLevel,
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}
