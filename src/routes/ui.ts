/**
 * GET /ui: the inspector page and the browser encoder, served from the project itself (no CDN):
 * the page (src/web, compiled), the container code it shares with the codec, and the WebAssembly AV1
 * encoder (@jsquash/avif). A fixed table of files read at start-up, so no request path reaches the disk.
 * Served cross-origin isolated (COOP/COEP) so the encoder may use threads (SharedArrayBuffer).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../http/http-error.js';

const DIST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** compiled modules the page loads, relative to dist/src: the page, the encoder and the container they share with the codec */
const LIB_MODULES = [
  'web/inspector.js',
  'web/encoder.js',
  'web/plot.js',
  'codec/container.js',
  'codec/crc32c.js',
  'codec/errors.js',
  'codec/kinds/names.js',
];
const STATIC_FILES = ['index.html', 'inspector.css'];

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
};

function packageDir(name: string): string {
  const require = createRequire(import.meta.url);
  let dir = path.dirname(require.resolve(name));
  while (!statSync(path.join(dir, 'package.json'), { throwIfNoEntry: false })) dir = path.dirname(dir);
  return dir;
}

/** URL path under /ui/ -> file on disk */
function fileTable(): Map<string, string> {
  const files = new Map<string, string>();
  for (const f of STATIC_FILES) files.set(f, path.join(DIST_SRC, 'web', f));
  for (const m of LIB_MODULES) files.set(`lib/${m}`, path.join(DIST_SRC, m));
  const avif = packageDir('@jsquash/avif');
  const walk = (dir: string, prefix: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(dir, e.name), `${prefix}${e.name}/`);
      else if (/\.(js|mjs|wasm)$/.test(e.name)) files.set(`vendor/jsquash-avif/${prefix}${e.name}`, path.join(dir, e.name));
    }
  };
  walk(avif, '');
  files.set('vendor/wasm-feature-detect.js', path.join(packageDir('wasm-feature-detect'), 'dist/esm/index.js'));
  return files;
}

export async function uiRoutes(app: FastifyInstance): Promise<void> {
  const table = fileTable();
  const cache = new Map<string, Buffer>();
  const read = (rel: string): Buffer => {
    let body = cache.get(rel);
    if (!body) {
      const file = table.get(rel);
      if (!file) throw new HttpError(404, 'not_found', `no file /ui/${rel}`);
      body = readFileSync(file);
      cache.set(rel, body);
    }
    return body;
  };
  // A missing page file is a broken build: say so at start-up, not on the first visit.
  for (const rel of [...STATIC_FILES, ...LIB_MODULES.map((m) => `lib/${m}`)]) read(rel);

  const send = (rel: string) => ({
    body: read(rel),
    type: MIME[path.extname(rel)] ?? 'application/octet-stream',
  });
  const schema = { tags: ['inspector'], summary: 'The inspector page and its files', hide: true, security: [] };
  for (const url of ['/ui', '/ui/']) {
    app.get(url, { schema }, async (_req, reply) => {
      const { body, type } = send('index.html');
      return reply
        .type(type)
        .header('cache-control', 'no-cache')
        .header('cross-origin-opener-policy', 'same-origin')
        .header('cross-origin-embedder-policy', 'require-corp')
        .send(body);
    });
  }
  app.get<{ Params: { '*': string } }>('/ui/*', { schema }, async (req, reply) => {
    const { body, type } = send(req.params['*']);
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .header('cross-origin-resource-policy', 'same-origin')
      .header('cross-origin-embedder-policy', 'require-corp')
      .send(body);
  });
}
