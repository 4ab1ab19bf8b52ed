/** What routes share: configuration, the job runner, the store, metrics. Built once per app. */
import type { EditorSummary } from '../codec/index.js';
import type { Metrics } from '../metrics/registry.js';
import type { BitstreamStore } from '../store/bitstream-store.js';
import type { DecodeJobResult, JobRunner } from '../workers/jobs.js';
import type { Backends } from '../lvlm-proxy/backends.js';
import type { PolicyTable } from '../policy/policy-table.js';
import type { GatewayConfig } from '../config/config.js';
import type { DecodeCache } from './decode-cache.js';
import type { CompressOutcome } from './image-service.js';
import type { ShadowRunner } from '../shadow/shadow.js';

export interface ModelSummary {
  name: string;
  id: string;
  provider: string;
  levels: number;
  defaultQuality: number;
}

export interface GatewayContext {
  config: GatewayConfig;
  runner: JobRunner;
  store: BitstreamStore;
  metrics: Metrics;
  /** shadow checks of proxied answers (src/shadow) */
  shadow: ShadowRunner;
  /** reconstructions of recently decoded bitstreams (see decode-cache.ts) */
  decodeCache: DecodeCache;
  /** encodes running now, by cache key: identical concurrent images share one (image-service.ts) */
  encodesInFlight: Map<string, Promise<{ outcome: CompressOutcome; reconstruction?: DecodeJobResult }>>;
  /** the model new bitstreams are made with (known once the runner is ready) */
  defaultModel(): ModelSummary;
  /** the editor package semantic AVIF is made with (the codec's first), null when none is bundled */
  defaultEditor: EditorSummary | null;
  /** the default model's calibrated policy (null: none shipped, the default quality applies) */
  policyTable: PolicyTable | null;
  /** accuracy targets a request may ask for */
  targets: string[];
  /** the upstream LVLM backends of the proxy (empty when none is configured) */
  backends: Backends;
  readiness(): Promise<{ ready: boolean; mode: string; checks: Record<string, { ok: boolean; detail?: string }> }>;
}
