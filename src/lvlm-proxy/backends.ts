/**
 * The upstream LVLM backends the proxy forwards to. One backend from VLMPRESS_UPSTREAM_URL (the
 * shortcut), several from a JSON file (VLMPRESS_BACKENDS_FILE, format in docs/backends.md); a
 * request is routed by its `model`: exact names first, then `prefix*` patterns, then the default.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError, RESOLUTION_PROFILES, type GatewayConfig, type ResolutionProfile } from '../server/config.js';

export interface Backend {
  name: string;
  /** OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 */
  url: string;
  apiKey: string | undefined;
  /** what the backend's vision encoder sees; travels with each request to the policy */
  profile: ResolutionProfile;
  /** model names, or `prefix*` patterns; `*` matches every model */
  models: string[];
  default: boolean;
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

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;

function parseBackendsFile(raw: unknown, file: string, env: NodeJS.ProcessEnv, problems: string[]): Backend[] {
  const where = (i: number, field: string) => `${file}: backends[${i}].${field}`;
  const list = (raw as { backends?: unknown } | null)?.backends;
  if (!Array.isArray(list) || list.length === 0) {
    problems.push(`${file}: expected {"backends": [ ... ]} with at least one backend`);
    return [];
  }
  const out: Backend[] = [];
  list.forEach((b: Record<string, unknown>, i) => {
    if (typeof b !== 'object' || b === null) return void problems.push(`${file}: backends[${i}] is not an object`);
    const name = b['name'];
    if (typeof name !== 'string' || !NAME.test(name)) problems.push(`${where(i, 'name')} must be a short name (letters, digits, _ . -)`);
    let url = typeof b['url'] === 'string' ? b['url'].replace(/\/+$/, '') : '';
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') problems.push(`${where(i, 'url')} must be http or https`);
    } catch {
      problems.push(`${where(i, 'url')} must be a URL, e.g. http://127.0.0.1:8000/v1`);
      url = '';
    }
    const profile = b['profile'] ?? 'openai';
    if (!(RESOLUTION_PROFILES as readonly unknown[]).includes(profile)) problems.push(`${where(i, 'profile')} must be one of ${RESOLUTION_PROFILES.join(', ')}`);
    const models = b['models'];
    if (!Array.isArray(models) || models.length === 0 || !models.every((m) => typeof m === 'string' && m.length > 0)) {
      problems.push(`${where(i, 'models')} must list model names (or "prefix*" patterns)`);
    }
    let apiKey: string | undefined;
    const keyEnv = b['api_key_env'];
    if (keyEnv !== undefined) {
      if (typeof keyEnv !== 'string' || !/^[A-Z_][A-Z0-9_]*$/i.test(keyEnv)) problems.push(`${where(i, 'api_key_env')} must be an environment variable name`);
      else if (!env[keyEnv]) problems.push(`${where(i, 'api_key_env')}: environment variable ${keyEnv} is not set`);
      else apiKey = env[keyEnv];
    }
    out.push({ name: String(name), url, apiKey, profile: profile as ResolutionProfile, models: Array.isArray(models) ? models.map(String) : [], default: b['default'] === true });
  });
  const names = out.map((b) => b.name);
  if (new Set(names).size !== names.length) problems.push(`${file}: backend names must be unique`);
  if (out.filter((b) => b.default).length > 1) problems.push(`${file}: at most one backend may be the default`);
  return out;
}

export async function loadBackends(config: GatewayConfig, env: NodeJS.ProcessEnv = process.env): Promise<Backends> {
  const problems: string[] = [];
  const list: Backend[] = [];
  if (config.backendsFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(config.backendsFile, 'utf8'));
    } catch (e) {
      throw new ConfigError([`VLMPRESS_BACKENDS_FILE ${config.backendsFile}: ${(e as Error).message}`]);
    }
    list.push(...parseBackendsFile(raw, config.backendsFile, env, problems));
  }
  if (config.upstreamUrl) {
    list.push({ name: 'default', url: config.upstreamUrl, apiKey: config.upstreamApiKey, profile: config.upstreamProfile, models: ['*'], default: !list.some((b) => b.default) });
  }
  if (problems.length) throw new ConfigError(problems);
  return new Backends(list);
}
