/**
 * The several-backends file (VLMPRESS_BACKENDS_FILE, format in docs/backends.md), read and checked
 * with the rest of the configuration at start-up, including the API keys it names by environment
 * variable, so a missing key stops start-up together with every other problem.
 */
import { readFileSync } from 'node:fs';
import { RESOLUTION_PROFILES, type ResolutionProfile } from '../policy/resolution.js';

/** The LVLM APIs the proxy speaks natively (src/lvlm-proxy/apis/). */
export const LVLM_APIS = ['openai', 'anthropic', 'gemini'] as const;
export type LvlmApi = (typeof LVLM_APIS)[number];

export interface BackendSpec {
  name: string;
  /** the API it speaks; only that API's routes send it requests */
  api: LvlmApi;
  /** base URL as that API's SDK takes it: http://127.0.0.1:8000/v1 (OpenAI), https://api.anthropic.com, https://generativelanguage.googleapis.com */
  url: string;
  apiKey: string | undefined;
  /** what the backend's vision encoder sees; travels with each request to the policy */
  profile: ResolutionProfile;
  /** model names, or `prefix*` patterns; `*` matches every model */
  models: string[];
  default: boolean;
  /** image tokens per image when a request sets no max_image_tokens (undefined: no limit) */
  maxImageTokens?: number;
  /** image formats it reads beyond PNG, JPEG, WebP and GIF (`avif`: stored AVIF files go as they are) */
  accepts: string[];
  /** its own shadow rate (0: never shadowed); undefined: VLMPRESS_SHADOW_RATE */
  shadowRate?: number;
}

/** Extra upstream formats a backend may declare. */
export const EXTRA_UPSTREAM_FORMATS = ['avif'] as const;

const NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/i;

export function parseBackends(raw: unknown, file: string, env: NodeJS.ProcessEnv, problems: string[]): BackendSpec[] {
  const where = (i: number, field: string) => `${file}: backends[${i}].${field}`;
  const list = (raw as { backends?: unknown } | null)?.backends;
  if (!Array.isArray(list) || list.length === 0) {
    problems.push(`${file}: expected {"backends": [ ... ]} with at least one backend`);
    return [];
  }
  const out: BackendSpec[] = [];
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
    const api = b['api'] ?? 'openai';
    if (!(LVLM_APIS as readonly unknown[]).includes(api)) problems.push(`${where(i, 'api')} must be one of ${LVLM_APIS.join(', ')}`);
    // Each provider's own API: its own token rules; an OpenAI-compatible server: OpenAI's unless told.
    const profile = b['profile'] ?? (api === 'anthropic' || api === 'gemini' ? api : 'openai');
    if (!(RESOLUTION_PROFILES as readonly unknown[]).includes(profile))
      problems.push(`${where(i, 'profile')} must be one of ${RESOLUTION_PROFILES.join(', ')}`);
    const models = b['models'];
    if (!Array.isArray(models) || models.length === 0 || !models.every((m) => typeof m === 'string' && m.length > 0)) {
      problems.push(`${where(i, 'models')} must list model names (or "prefix*" patterns)`);
    }
    let apiKey: string | undefined;
    const keyEnv = b['api_key_env'];
    if (keyEnv !== undefined) {
      if (typeof keyEnv !== 'string' || !/^[A-Z_][A-Z0-9_]*$/i.test(keyEnv))
        problems.push(`${where(i, 'api_key_env')} must be an environment variable name`);
      else if (!env[keyEnv]) problems.push(`${where(i, 'api_key_env')}: environment variable ${keyEnv} is not set`);
      else apiKey = env[keyEnv];
    }
    const accepts = b['accepts'] ?? [];
    if (!Array.isArray(accepts) || !accepts.every((f) => (EXTRA_UPSTREAM_FORMATS as readonly unknown[]).includes(f)))
      problems.push(`${where(i, 'accepts')} must list formats among ${EXTRA_UPSTREAM_FORMATS.join(', ')}`);
    // Anthropic's and Google's APIs name the formats they read, and AVIF is not one of them.
    else if (accepts.length > 0 && api !== 'openai') problems.push(`${where(i, 'accepts')}: the ${String(api)} API reads no extra formats`);
    // `"shadow": false` opts a backend out of shadow replays; `{"rate": r}` sets its own rate.
    const shadow = b['shadow'];
    let shadowRate: number | undefined;
    if (shadow === false) shadowRate = 0;
    else if (typeof shadow === 'object' && shadow !== null && typeof (shadow as { rate?: unknown }).rate === 'number') {
      shadowRate = (shadow as { rate: number }).rate;
      if (!(shadowRate >= 0 && shadowRate <= 1)) problems.push(`${where(i, 'shadow.rate')} must be between 0 and 1`);
    } else if (shadow !== undefined) problems.push(`${where(i, 'shadow')} must be false or {"rate": 0..1}`);
    const maxImageTokens = b['max_image_tokens'];
    if (maxImageTokens !== undefined && !(Number.isSafeInteger(maxImageTokens) && (maxImageTokens as number) >= 1))
      problems.push(`${where(i, 'max_image_tokens')} must be a positive integer`);
    out.push({
      ...(typeof maxImageTokens === 'number' && maxImageTokens >= 1 ? { maxImageTokens } : {}),
      name: String(name),
      api: api as LvlmApi,
      url,
      apiKey,
      profile: profile as ResolutionProfile,
      models: Array.isArray(models) ? models.map(String) : [],
      default: b['default'] === true,
      accepts: Array.isArray(accepts) ? accepts.map(String) : [],
      ...(shadowRate !== undefined ? { shadowRate } : {}),
    });
  });
  const names = out.map((b) => b.name);
  if (new Set(names).size !== names.length) problems.push(`${file}: backend names must be unique`);
  if (out.filter((b) => b.default).length > 1) problems.push(`${file}: at most one backend may be the default`);
  return out;
}

export function readBackendsFile(file: string, env: NodeJS.ProcessEnv, problems: string[]): BackendSpec[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    problems.push(`VLMPRESS_BACKENDS_FILE ${file}: ${(e as Error).message}`);
    return [];
  }
  return parseBackends(raw, file, env, problems);
}
