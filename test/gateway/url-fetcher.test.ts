import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  fetchImageUrl,
  isFetchableUrl,
  isPublicAddress,
  UrlFetchError,
  type UrlFetchErrorCode,
  type UrlFetchOptions,
} from '../../src/lvlm-proxy/url-fetcher.js';

const LOOPBACK = ['127.0.0.0/8'];
const PNG_BYTES = Uint8Array.from({ length: 3000 }, (_, i) => (i * 31 + 7) & 0xff);
PNG_BYTES.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Asserts that `promise` rejects with a UrlFetchError of `code`, and returns it for further checks. */
async function rejectsWith(promise: Promise<unknown>, code: UrlFetchErrorCode): Promise<UrlFetchError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof UrlFetchError, `expected UrlFetchError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but the fetch succeeded`);
}

describe('isPublicAddress', () => {
  it('accepts only public unicast addresses', () => {
    const table: [string, boolean][] = [
      ['8.8.8.8', true],
      ['2606:4700::1111', true],
      ['127.0.0.1', false],
      ['10.1.2.3', false],
      ['172.16.0.1', false],
      ['172.31.255.255', false],
      ['192.168.1.1', false],
      ['169.254.169.254', false],
      ['100.64.0.1', false],
      ['0.0.0.0', false],
      ['224.0.0.1', false],
      ['255.255.255.255', false],
      ['::1', false],
      ['::', false],
      ['fe80::1', false],
      ['fc00::1', false],
      ['fd12:3456::1', false],
      ['ff02::1', false],
      ['::ffff:127.0.0.1', false],
      ['::ffff:7f00:1', false],
      ['::ffff:10.0.0.1', false],
      ['::ffff:8.8.8.8', true],
      ['64:ff9b::7f00:1', false], // NAT64 embedding of 127.0.0.1
      ['2002:7f00:1::', false], // 6to4
      ['2001::1', false], // teredo
      ['not an ip', false],
      ['', false],
    ];
    for (const [address, expected] of table) assert.equal(isPublicAddress(address), expected, address);
  });

  it('honours the test-only allowlist', () => {
    assert.equal(isPublicAddress('127.0.0.1', ['127.0.0.0/8']), true);
    assert.equal(isPublicAddress('::ffff:127.0.0.1', ['127.0.0.0/8']), true);
    assert.equal(isPublicAddress('::1', ['::1/128']), true);
    assert.equal(isPublicAddress('10.0.0.1', ['127.0.0.0/8', '::1/128']), false);
    assert.throws(() => isPublicAddress('127.0.0.1', ['127.0.0.0/33']), TypeError);
  });

  it('recognises fetchable URLs', () => {
    assert.equal(isFetchableUrl('http://example.com/a.png'), true);
    assert.equal(isFetchableUrl('HTTPS://example.com/a.png'), true);
    assert.equal(isFetchableUrl('data:image/png;base64,AAAA'), false);
    assert.equal(isFetchableUrl('iVBORw0KGgo='), false);
    assert.equal(isFetchableUrl('ftp://example.com/a.png'), false);
  });
});

describe('fetchImageUrl against loopback servers', () => {
  let server: http.Server;
  let base: string;
  let port: number;
  let hits: string[] = [];
  /** Per path: resolves when the server's response closes, with whether it had finished writing. */
  const closed = new Map<string, Promise<boolean>>();

  before(async () => {
    server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      hits.push(url.pathname);
      // Lets a test wait until the server sees the client's connection go away.
      closed.set(url.pathname, new Promise((r) => res.on('close', () => r(res.writableFinished))));
      switch (url.pathname) {
        case '/img.png':
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG_BYTES.length });
          return res.end(PNG_BYTES);
        case '/no-type':
          res.writeHead(200);
          return res.end(PNG_BYTES);
        case '/octet':
          res.writeHead(200, { 'content-type': 'application/octet-stream; charset=binary' });
          return res.end(PNG_BYTES);
        case '/html':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end('<html></html>');
        case '/missing':
          res.writeHead(404, { 'content-type': 'text/plain' });
          return res.end('not found');
        case '/relative':
          res.writeHead(302, { location: 'img.png' });
          return res.end();
        case '/absolute':
          res.writeHead(307, { location: `${base}/relative` });
          return res.end();
        case '/to-metadata':
          res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' });
          return res.end();
        case '/to-private':
          res.writeHead(301, { location: 'http://10.0.0.1/' });
          return res.end();
        case '/to-file':
          res.writeHead(302, { location: 'file:///etc/passwd' });
          return res.end();
        case '/to-localhost':
          res.writeHead(303, { location: `http://localhost:${port}/img.png` });
          return res.end();
        case '/loop':
          res.writeHead(302, { location: '/loop' });
          return res.end();
        case '/declared-huge':
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': 50_000_000 });
          return res.write(PNG_BYTES); // then nothing: the client must not wait for the rest
        case '/chunked-huge': {
          res.writeHead(200, { 'content-type': 'image/png' });
          // Endless chunked body (bounded at 64 MiB so a broken client cannot wedge the test).
          let sent = 0;
          const chunk = new Uint8Array(64 * 1024);
          const pump = () => {
            while (!res.destroyed && sent < 64 * 2 ** 20) {
              sent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            if (!res.destroyed) res.end();
          };
          return pump();
        }
        case '/no-headers':
          return; // never answers
        case '/stall-body':
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': 10_000 });
          return res.write(PNG_BYTES.subarray(0, 100)); // and then stalls
        default:
          res.writeHead(500);
          return res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const opts = (extra: Partial<UrlFetchOptions> = {}): UrlFetchOptions => ({
    maxBytes: 100_000,
    timeoutMs: 3000,
    allowCidrs: LOOPBACK,
    ...extra,
  });

  it('fetches the exact bytes and content-type from an allowed server', async () => {
    const got = await fetchImageUrl(`${base}/img.png`, opts());
    assert.deepEqual(got.bytes, PNG_BYTES);
    assert.equal(got.contentType, 'image/png');
    assert.equal(got.finalUrl, `${base}/img.png`);
    assert.equal(got.redirects, 0);
    const untyped = await fetchImageUrl(`${base}/no-type`, opts());
    assert.equal(untyped.contentType, undefined, 'a missing content-type is allowed');
    assert.deepEqual(untyped.bytes, PNG_BYTES);
    const octet = await fetchImageUrl(`${base}/octet`, opts());
    assert.equal(octet.contentType, 'application/octet-stream; charset=binary');
  });

  it('blocks loopback without the allowlist, by IP literal and by name', async () => {
    hits = [];
    const a = await rejectsWith(fetchImageUrl(`${base}/img.png`, opts({ allowCidrs: [] })), 'image_url_blocked');
    assert.equal(a.status, 400);
    assert.match(a.message, /127\.0\.0\.1.*not .*public/);
    const b = await rejectsWith(fetchImageUrl(`http://localhost:${port}/img.png`, opts({ allowCidrs: undefined })), 'image_url_blocked');
    assert.match(b.message, /localhost/);
    await rejectsWith(fetchImageUrl(`http://[::1]:${port}/img.png`, opts()), 'image_url_blocked');
    await rejectsWith(fetchImageUrl(`http://[::ffff:127.0.0.1]:${port}/img.png`, opts({ allowCidrs: [] })), 'image_url_blocked');
    assert.deepEqual(hits, [], 'no request reached the server');
  });

  it('resolves names through the checked lookup when allowed', async () => {
    const got = await fetchImageUrl(`http://localhost:${port}/img.png`, opts());
    assert.deepEqual(got.bytes, PNG_BYTES);
  });

  it('rejects decimal and hex IP literal forms of loopback', async () => {
    for (const url of ['http://2130706433/', 'http://0x7f000001/', 'http://0x7f.1/', 'http://017700000001/', 'http://127.1/']) {
      await rejectsWith(fetchImageUrl(url, opts({ allowCidrs: [] })), 'image_url_blocked');
    }
  });

  it('rejects non-http schemes, malformed URLs and credentials', async () => {
    const bad = [
      'file:///etc/passwd',
      'ftp://example.com/a.png',
      'data:image/png;base64,AAAA',
      'gopher://127.0.0.1:70/',
      'javascript:alert(1)',
      'not a url',
      'http//missing-colon',
      '',
      `http://user:pass@127.0.0.1:${port}/img.png`,
      `http://user@127.0.0.1:${port}/img.png`,
    ];
    hits = [];
    for (const url of bad) {
      const err = await rejectsWith(fetchImageUrl(url, opts()), 'invalid_image_url');
      assert.equal(err.status, 400);
    }
    assert.deepEqual(hits, []);
  });

  it('follows relative and absolute redirects, re-checking each hop', async () => {
    const rel = await fetchImageUrl(`${base}/relative`, opts());
    assert.deepEqual(rel.bytes, PNG_BYTES);
    assert.equal(rel.finalUrl, `${base}/img.png`);
    assert.equal(rel.redirects, 1);
    const abs = await fetchImageUrl(`${base}/absolute`, opts());
    assert.equal(abs.redirects, 2);
    assert.equal(abs.finalUrl, `${base}/img.png`);
    await rejectsWith(fetchImageUrl(`${base}/absolute`, opts({ maxRedirects: 1 })), 'too_many_redirects');
    await rejectsWith(fetchImageUrl(`${base}/relative`, opts({ maxRedirects: 0 })), 'too_many_redirects');
  });

  it('blocks redirects to metadata, private and non-http targets', async () => {
    await rejectsWith(fetchImageUrl(`${base}/to-metadata`, opts()), 'image_url_blocked');
    await rejectsWith(fetchImageUrl(`${base}/to-private`, opts()), 'image_url_blocked');
    await rejectsWith(fetchImageUrl(`${base}/to-file`, opts()), 'invalid_image_url');
    assert.equal((await fetchImageUrl(`${base}/to-localhost`, opts())).redirects, 1);
  });

  it('checks redirect hops to hostnames through the resolver too', async (t) => {
    // A second loopback server on 127.0.0.2 (Linux routes all of 127/8 to lo) is the only allowed
    // address; its redirect to `localhost` resolves (via /etc/hosts) to 127.0.0.1 or ::1: refused.
    const other = http.createServer((req, res) => {
      res.writeHead(302, { location: `http://localhost:${port}/img.png` });
      res.end();
    });
    try {
      await new Promise<void>((resolve, reject) => other.once('error', reject).listen(0, '127.0.0.2', resolve));
    } catch {
      return t.skip('127.0.0.2 is not available on this host');
    }
    try {
      const otherBase = `http://127.0.0.2:${(other.address() as AddressInfo).port}`;
      hits = [];
      const err = await rejectsWith(fetchImageUrl(`${otherBase}/`, opts({ allowCidrs: ['127.0.0.2/32'] })), 'image_url_blocked');
      assert.match(err.message, /localhost/);
      assert.deepEqual(hits, [], 'the blocked hop never reached the 127.0.0.1 server');
    } finally {
      other.closeAllConnections();
      await new Promise<void>((r) => other.close(() => r()));
    }
  });

  it('gives up on redirect loops', async () => {
    hits = [];
    const err = await rejectsWith(fetchImageUrl(`${base}/loop`, opts()), 'too_many_redirects');
    assert.equal(err.status, 422);
    assert.equal(hits.length, 6, 'the first request plus the default 5 redirects');
  });

  it('rejects bodies over the byte cap, declared or streamed', async () => {
    const declared = await rejectsWith(fetchImageUrl(`${base}/declared-huge`, opts()), 'image_url_too_large');
    assert.equal(declared.status, 413);
    assert.equal(await closed.get('/declared-huge'), false);
    await rejectsWith(fetchImageUrl(`${base}/chunked-huge`, opts({ maxBytes: 200_000 })), 'image_url_too_large');
    // The server's endless writer stops because the client hung up, not because it reached its bound.
    assert.equal(await closed.get('/chunked-huge'), false);
    // Exactly at the cap is fine.
    assert.equal((await fetchImageUrl(`${base}/img.png`, opts({ maxBytes: PNG_BYTES.length }))).bytes.length, PNG_BYTES.length);
    await rejectsWith(fetchImageUrl(`${base}/img.png`, opts({ maxBytes: PNG_BYTES.length - 1 })), 'image_url_too_large');
  });

  it('times out on servers that never answer or stall mid-body, and closes the connection', { timeout: 10_000 }, async () => {
    for (const path of ['/no-headers', '/stall-body']) {
      const t0 = performance.now();
      const err = await rejectsWith(fetchImageUrl(`${base}${path}`, opts({ timeoutMs: 300 })), 'image_fetch_timeout');
      const elapsed = performance.now() - t0;
      assert.equal(err.status, 422);
      assert.ok(elapsed >= 250 && elapsed < 1500, `${path}: ${elapsed} ms`);
      assert.equal(await closed.get(path), false, `${path}: the server saw the connection closed`);
    }
  });

  it('rejects non-image content types and upstream errors', async () => {
    const html = await rejectsWith(fetchImageUrl(`${base}/html`, opts()), 'unsupported_image_format');
    assert.equal(html.status, 415);
    const missing = await rejectsWith(fetchImageUrl(`${base}/missing`, opts()), 'image_fetch_failed');
    assert.equal(missing.status, 422);
    assert.equal(missing.details?.status, 404);
  });

  it('reports connection refused as a fetch failure', async () => {
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const freePort = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await rejectsWith(fetchImageUrl(`http://127.0.0.1:${freePort}/img.png`, opts()), 'image_fetch_failed');
    assert.equal(err.details?.code, 'ECONNREFUSED');
  });
});
