/**
 * API keys (VLMPRESS_API_KEYS): `Authorization: Bearer <key>`, or where an LVLM API's route has its
 * own way (Anthropic's x-api-key, Gemini's x-goog-api-key or ?key=), that way, so its SDK works as
 * it is. Health, readiness and metrics stay open for probes and scrapers, /docs and the inspector
 * page's files (/ui) for people: the page asks for a key and sends it with every API call.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/http-error.js';
import { bearerToken } from '../lvlm-proxy/apis/dialect.js';
import { queryOf, routeDialect } from '../routes/proxy-flow.js';

const OPEN_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export function installAuth(app: FastifyInstance, keys: string[]): void {
  if (keys.length === 0) return;
  const digests = keys.map(digest);
  app.addHook('onRequest', async (req) => {
    const route = req.url.split('?')[0]!;
    if (OPEN_ROUTES.has(route) || ['/docs', '/ui'].some((p) => route === p || route.startsWith(`${p}/`))) return;
    const dialect = routeDialect(req);
    const key = dialect ? dialect.clientKey(req.headers, queryOf(req)) : bearerToken(req.headers);
    if (!key) throw new HttpError(401, 'unauthorized', `missing ${dialect?.keyHint ?? 'Authorization: Bearer <api key>'}`);
    const d = digest(key);
    // Compare digests in constant time so response timing reveals nothing about the keys.
    if (!digests.some((k) => timingSafeEqual(k, d))) throw new HttpError(401, 'unauthorized', 'invalid API key');
  });
}
