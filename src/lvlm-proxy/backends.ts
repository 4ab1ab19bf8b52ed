/**
 * The upstream LVLM backends the proxy forwards to. One backend from VLMPRESS_UPSTREAM_URL (the
 * shortcut), several from a JSON file (VLMPRESS_BACKENDS_FILE, read with the configuration:
 * `src/config/backends-file.ts`); a request is routed by its `model`: exact names first, then
 * `prefix*` patterns, then the default. Each backend speaks one API (OpenAI, Anthropic, Gemini), and
 * each API's routes serve only its backends.
 */
import type { PayloadFormat } from '../codec/index.js';
import type { BackendSpec, LvlmApi } from '../config/backends-file.js';
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

  /**
   * The backend for `model`. With `api`: names and prefixes are matched over every backend (so a model
   * another API's backend serves is found, and refused by the caller, never sent elsewhere), while `*`
   * and the default are taken from the API's own backends first.
   */
  route(model: string, api?: LvlmApi): Backend | undefined {
    const named =
      this.list.find((b) => b.models.includes(model)) ??
      this.list.find((b) => b.models.some((p) => p.length > 1 && p.endsWith('*') && model.startsWith(p.slice(0, -1))));
    if (named) return named;
    const catchAll = (list: Backend[]) => list.find((b) => b.models.includes('*')) ?? list.find((b) => b.default);
    return (api ? catchAll(this.list.filter((b) => b.api === api)) : undefined) ?? catchAll(this.list);
  }
}

export function backendsFrom(config: GatewayConfig): Backends {
  const list = [...config.backends];
  if (config.upstreamUrl) {
    list.push({
      name: 'default',
      api: config.upstreamApi,
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
