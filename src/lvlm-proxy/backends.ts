/**
 * The upstream LVLM backends the proxy forwards to. One backend from VLMPRESS_UPSTREAM_URL (the
 * shortcut), several from a JSON file (VLMPRESS_BACKENDS_FILE, read with the configuration:
 * `src/server/backends-file.ts`); a request is routed by its `model`: exact names first, then
 * `prefix*` patterns, then the default.
 */
import type { PayloadFormat } from '../codec/index.js';
import type { BackendSpec } from '../config/backends-file.js';
import type { GatewayConfig } from '../config/config.js';

export type Backend = BackendSpec;

/**
 * The stored classical files a backend can take as they are: WebP and JPEG (every LVLM API reads
 * them), and AVIF when its entry says it reads AVIF (`accepts`); no backend: what every API reads.
 */
export function passthroughCodecs(backend: Backend | undefined): PayloadFormat[] {
  return ['webp', 'jpeg', ...(backend?.accepts.includes('avif') ? (['avif'] as const) : [])];
}

export class Backends {
  constructor(readonly list: Backend[]) {}

  get configured(): boolean {
    return this.list.length > 0;
  }

  route(model: string): Backend | undefined {
    return (
      this.list.find((b) => b.models.includes(model)) ??
      this.list.find((b) => b.models.some((p) => p.endsWith('*') && model.startsWith(p.slice(0, -1)))) ??
      this.list.find((b) => b.default)
    );
  }
}

export function backendsFrom(config: GatewayConfig): Backends {
  const list = [...config.backends];
  if (config.upstreamUrl) {
    list.push({
      name: 'default',
      url: config.upstreamUrl,
      apiKey: config.upstreamApiKey,
      profile: config.upstreamProfile,
      ...(config.upstreamMaxImageTokens ? { maxImageTokens: config.upstreamMaxImageTokens } : {}),
      accepts: [],
      models: ['*'],
      default: !list.some((b) => b.default),
    });
  }
  return new Backends(list);
}
