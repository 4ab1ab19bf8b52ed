/**
 * Fetching images from client-supplied http(s) URLs without becoming an SSRF proxy.
 *
 * A client can name any URL (directly, or through a redirect from a server it controls), so every hop
 * is checked: the scheme must be http(s), and every address the hostname resolves to must be public
 * unicast — no loopback, private, link-local (cloud metadata at 169.254.169.254), CGNAT, multicast,
 * unique-local, or IPv4 hidden inside IPv6 (mapped, NAT64, 6to4, teredo).
 *
 * DNS rebinding: resolving a name, checking it, then letting the HTTP client resolve it again would
 * let a hostile DNS server answer "public" to the check and "127.0.0.1" to the connection. So the
 * check lives inside the `lookup` function handed to http.request: the addresses that are validated
 * are exactly the ones the socket connects to. IP-literal hosts never reach `lookup` (Node connects to
 * them directly), so they are checked before the request is made.
 *
 * Everything else is bounded: redirects (followed by hand, re-checked each hop), bytes (declared and
 * actually received), and time (one deadline over all hops, DNS, connect and body).
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import ipaddr from 'ipaddr.js';

export type UrlFetchErrorCode =
  | 'invalid_image_url'
  | 'image_url_blocked'
  | 'image_fetch_failed'
  | 'image_fetch_timeout'
  | 'image_url_too_large'
  | 'too_many_redirects'
  | 'unsupported_image_format';

const STATUS: Record<UrlFetchErrorCode, number> = {
  invalid_image_url: 400,
  image_url_blocked: 400,
  image_fetch_failed: 422,
  image_fetch_timeout: 422,
  image_url_too_large: 413,
  too_many_redirects: 422,
  unsupported_image_format: 415,
};

export class UrlFetchError extends Error {
  readonly status: number;
  constructor(
    readonly code: UrlFetchErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'UrlFetchError';
    this.status = STATUS[code];
  }
}

export interface UrlFetchOptions {
  /** Largest body accepted, in bytes (declared content-length and bytes actually received). */
  maxBytes: number;
  /** One deadline for the whole fetch: every hop's DNS, connect, headers and body. */
  timeoutMs: number;
  /** Redirects followed before giving up; default 5. */
  maxRedirects?: number;
  /** Tests/dev only: CIDRs whose addresses are allowed even though they are not public. */
  allowCidrs?: string[];
}

export interface FetchedImage {
  bytes: Uint8Array;
  contentType: string | undefined;
  finalUrl: string;
  redirects: number;
}

const DEFAULT_MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const REQUEST_HEADERS = {
  'user-agent': 'vlmpress/0.1 (+image fetch)',
  accept: 'image/*',
  // We do not decompress: a compressed body would dodge the byte cap (decompression bombs).
  'accept-encoding': 'identity',
};

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseCidrs(cidrs: readonly string[] | undefined): Cidr[] {
  return (cidrs ?? []).map((c) => {
    try {
      return ipaddr.parseCIDR(c.trim());
    } catch {
      // A typo in a dev allowlist must fail loudly, not silently allow nothing (or everything).
      throw new TypeError(`allowCidrs: invalid CIDR ${JSON.stringify(c)}`);
    }
  });
}

function addressAllowed(address: string, cidrs: readonly Cidr[]): boolean {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (!ipaddr.isValid(bare)) return false;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    // process() unwraps IPv4-mapped IPv6 (::ffff:127.0.0.1), so the IPv4 rules apply to it.
    addr = ipaddr.process(bare);
  } catch {
    return false;
  }
  if (cidrs.some(([range, bits]) => range.kind() === addr.kind() && addr.match(range, bits))) return true;
  // Allow-list, not deny-list: every special range (present or future in ipaddr.js) is refused.
  return addr.range() === 'unicast';
}

/** True when `address` is a public unicast IP (or inside one of `allowCidrs`); false for anything else, including non-IPs. */
export function isPublicAddress(address: string, allowCidrs?: string[]): boolean {
  return addressAllowed(address, parseCidrs(allowCidrs));
}

/** True for strings that look like http(s) URLs (to tell them apart from base64 / data: payloads). */
export function isFetchableUrl(text: string): boolean {
  return /^https?:\/\//i.test(text);
}

function parseFetchUrl(text: string, base?: URL): URL {
  let url: URL;
  try {
    url = base ? new URL(text, base) : new URL(text);
  } catch {
    throw new UrlFetchError('invalid_image_url', 'image URL is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UrlFetchError('invalid_image_url', `image URL scheme ${url.protocol} is not allowed (http or https only)`, {
      scheme: url.protocol.replace(/:$/, ''),
    });
  }
  // Credentials in URLs would be forwarded to whichever host the URL (or a redirect) names.
  if (url.username || url.password) {
    throw new UrlFetchError('invalid_image_url', 'image URL must not contain credentials');
  }
  if (!url.hostname) throw new UrlFetchError('invalid_image_url', 'image URL has no host');
  return url;
}

function blocked(host: string): UrlFetchError {
  // The resolved address is not echoed: that would turn the gateway into an internal-DNS oracle.
  return new UrlFetchError('image_url_blocked', `image URL host ${host} does not resolve to a public address`, { host });
}

/**
 * A `lookup` for http.request that refuses unless every address the name resolves to is allowed.
 * Because the socket connects to what this returns, there is no window between check and use.
 */
function checkedLookup(cidrs: readonly Cidr[]): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
      if (err) return callback(err, '');
      if (addresses.length === 0 || !addresses.every((a) => addressAllowed(a.address, cidrs))) {
        return callback(blocked(hostname), '');
      }
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      const first = wanted[0];
      if (!first) {
        const e: NodeJS.ErrnoException = new Error(`no IPv${options.family} address for ${hostname}`);
        e.code = 'ENOTFOUND';
        return callback(e, '');
      }
      // Node 20's autoSelectFamily asks for all addresses; classic callers want one.
      if (options.all) callback(null, wanted);
      else callback(null, first.address, first.family);
    });
  };
}

type Hop = { kind: 'redirect'; location: string } | { kind: 'final'; bytes: Uint8Array; contentType: string | undefined };

function acceptableContentType(value: string | undefined): boolean {
  if (value === undefined || value.trim() === '') return true; // gateway sniffs the bytes itself
  const media = value.split(';')[0]!.trim().toLowerCase();
  return media.startsWith('image/') || media === 'application/octet-stream';
}

/** One request/response. Resolves with a redirect target or the final body; always leaves no socket behind. */
function fetchHop(url: URL, cidrs: readonly Cidr[], maxBytes: number, signal: AbortSignal): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    // IP literals bypass `lookup`, so they are checked here (WHATWG URL already turned 2130706433 / 0x7f.1 into dotted form).
    if (net.isIP(host) && !addressAllowed(host, cidrs)) return reject(blocked(host));
    if (signal.aborted) return reject(timeoutError());

    let req: http.ClientRequest | undefined;
    let res: http.IncomingMessage | undefined;
    let settled = false;
    const finish = (err: Error | undefined, hop?: Hop) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err) {
        res?.destroy();
        req?.destroy();
        reject(err);
      } else {
        resolve(hop!);
      }
    };
    const onAbort = () => finish(timeoutError());
    signal.addEventListener('abort', onAbort, { once: true });

    const options: http.RequestOptions = {
      method: 'GET',
      hostname: host,
      port: url.port || undefined,
      path: `${url.pathname}${url.search}`,
      headers: REQUEST_HEADERS,
      lookup: checkedLookup(cidrs),
      // No pooling: a kept-alive socket could be reused by a later fetch with a different allowlist.
      agent: false,
    };
    try {
      req = (url.protocol === 'https:' ? https : http).request(options);
    } catch (err) {
      return finish(new UrlFetchError('image_fetch_failed', `could not request image URL: ${(err as Error).message}`));
    }
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof UrlFetchError) return finish(err); // blocked by checkedLookup
      finish(
        new UrlFetchError(
          'image_fetch_failed',
          `could not fetch image URL from ${url.host}: ${err.message}`,
          err.code ? { code: err.code } : undefined,
        ),
      );
    });
    req.on('response', (response) => {
      res = response;
      response.on('error', () =>
        finish(new UrlFetchError('image_fetch_failed', `connection to ${url.host} failed while reading the image`)),
      );
      const status = response.statusCode ?? 0;
      const location = response.headers.location;
      if (REDIRECT_STATUSES.has(status) && location) {
        // The redirect body is irrelevant; closing the socket is cheaper than draining it.
        response.destroy();
        return finish(undefined, { kind: 'redirect', location });
      }
      if (status < 200 || status > 299) {
        return finish(new UrlFetchError('image_fetch_failed', `image URL answered HTTP ${status}`, { status }));
      }
      const contentType = response.headers['content-type'];
      if (!acceptableContentType(contentType)) {
        return finish(
          new UrlFetchError('unsupported_image_format', `image URL content-type ${contentType} is not an image`, { contentType }),
        );
      }
      const encoding = response.headers['content-encoding']?.trim().toLowerCase();
      if (encoding && encoding !== 'identity') {
        return finish(
          new UrlFetchError('image_fetch_failed', `image URL sent content-encoding ${encoding} although identity was asked for`, {
            contentEncoding: encoding,
          }),
        );
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        return finish(
          new UrlFetchError('image_url_too_large', `image at URL is ${declared} bytes, over the ${maxBytes} byte limit`, {
            bytes: declared,
            maxBytes,
          }),
        );
      }
      const chunks: Buffer[] = [];
      let received = 0;
      response.on('data', (chunk: Buffer) => {
        received += chunk.length;
        // content-length can be absent (chunked) or a lie: count what actually arrives.
        if (received > maxBytes) {
          finish(new UrlFetchError('image_url_too_large', `image at URL is over the ${maxBytes} byte limit`, { maxBytes }));
          return;
        }
        chunks.push(chunk);
      });
      response.on('end', () => {
        // A fresh Uint8Array, not a view into Buffer's shared pool.
        const bytes = new Uint8Array(received);
        let offset = 0;
        for (const c of chunks) {
          bytes.set(c, offset);
          offset += c.length;
        }
        finish(undefined, { kind: 'final', bytes, contentType });
      });
      response.on('close', () => {
        if (!response.complete)
          finish(new UrlFetchError('image_fetch_failed', `connection to ${url.host} closed before the image was complete`));
      });
    });
    req.end();
  });
}

function timeoutError(): UrlFetchError {
  return new UrlFetchError('image_fetch_timeout', 'fetching the image URL timed out');
}

/**
 * Fetches an image from an http(s) URL supplied by a client, following redirects, refusing any hop
 * that would reach a non-public address, and enforcing the byte cap and an overall deadline.
 */
export async function fetchImageUrl(url: string, options: UrlFetchOptions): Promise<FetchedImage> {
  const { maxBytes, timeoutMs, maxRedirects = DEFAULT_MAX_REDIRECTS } = options;
  if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw new RangeError('maxBytes must be a positive number');
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError('timeoutMs must be a positive number');
  if (!(Number.isInteger(maxRedirects) && maxRedirects >= 0)) throw new RangeError('maxRedirects must be a non-negative integer');
  const cidrs = parseCidrs(options.allowCidrs);

  let current = parseFetchUrl(url);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    for (let redirects = 0; ; redirects++) {
      const hop = await fetchHop(current, cidrs, maxBytes, controller.signal);
      if (hop.kind === 'final') {
        return { bytes: hop.bytes, contentType: hop.contentType, finalUrl: current.href, redirects };
      }
      if (redirects >= maxRedirects) {
        throw new UrlFetchError('too_many_redirects', `image URL redirected more than ${maxRedirects} times`, { maxRedirects });
      }
      // Relative Location resolves against the current hop; the next hop is re-validated from scratch.
      current = parseFetchUrl(hop.location, current);
    }
  } finally {
    clearTimeout(timer);
  }
}
