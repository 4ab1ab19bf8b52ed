/**
 * Talking to an upstream backend: forward a request with the backend's credentials and send its
 * answer back unchanged (status, body bytes, content type: JSON, SSE streams and errors alike).
 * A client that goes away aborts the upstream request, so no tokens are generated for nobody.
 *
 * The client is undici's `request` on one keep-alive agent, not the global `fetch`: fetch wraps every
 * body in a WHATWG stream and every call in abort signals and transferables, which was half the CPU
 * of a text-only proxied request (docs/gateway.md, "Text-only hop").
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Agent, errors as undiciErrors, request, type Dispatcher } from 'undici';
import { HttpError } from '../http/http-error.js';
import type { Backend } from './backends.js';
import type { ApiDialect } from './apis/dialect.js';
/** Response headers that do not describe the bytes we relay (hop-by-hop, framing, cookies). */
const DROP_RESPONSE_HEADERS = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'proxy-authenticate',
  'upgrade',
  'trailer',
  'te',
  'set-cookie',
]);

/**
 * One connection pool per backend origin, kept alive between requests. Streams may run for minutes,
 * so the body has no idle timeout; the time to the response headers is bounded per call.
 */
const agent = new Agent({ keepAliveTimeout: 30_000, bodyTimeout: 0, connections: 256 });

export interface UpstreamCall {
  backend: Backend;
  /** the backend's API: which client headers go on, how keys are sent */
  dialect: ApiDialect;
  /** path under the backend's base URL, e.g. /chat/completions (with its query, if any) */
  path: string;
  method: 'GET' | 'POST';
  body?: string;
  /** time allowed until the response headers arrive; a stream may then run as long as it runs */
  timeoutMs: number;
  /** the client's own credential headers, forwarded only when the gateway has no keys of its own and the backend none either */
  clientCredentials?: Record<string, string>;
  clientHeaders?: FastifyRequest['headers'];
  /** headers of the gateway's own (a shadow replay's mark) */
  extraHeaders?: Record<string, string>;
  signal?: AbortSignal;
}

/** The backend's answer: its status and headers, and its body not read yet. */
export type UpstreamResponse = Dispatcher.ResponseData;

export async function callUpstream(call: UpstreamCall): Promise<UpstreamResponse> {
  const headers: Record<string, string> = { 'user-agent': 'vlmpress-proxy/0.1' };
  for (const name of call.dialect.forwardHeaders) {
    const v = call.clientHeaders?.[name];
    if (typeof v === 'string') headers[name] = v;
  }
  if (call.body !== undefined) headers['content-type'] = 'application/json';
  Object.assign(headers, call.backend.apiKey ? call.dialect.backendCredentials(call.backend.apiKey) : call.clientCredentials);
  Object.assign(headers, call.extraHeaders);

  try {
    return await request(`${call.backend.url}${call.path}`, {
      dispatcher: agent,
      method: call.method,
      headers,
      ...(call.body !== undefined ? { body: call.body } : {}),
      ...(call.signal ? { signal: call.signal } : {}),
      headersTimeout: call.timeoutMs,
    });
  } catch (e) {
    if (e instanceof undiciErrors.HeadersTimeoutError)
      throw new HttpError(504, 'upstream_timeout', `backend ${call.backend.name} did not answer within ${call.timeoutMs} ms`);
    if (call.signal?.aborted) throw new HttpError(499, 'client_closed_request', 'the client closed the connection');
    throw new HttpError(502, 'upstream_unavailable', `backend ${call.backend.name} is unreachable: ${(e as Error).message}`);
  }
}

/**
 * Relay an upstream response: same status, same body bytes, streamed as they arrive. `stream`: the
 * answer is a stream even when it is not SSE (Gemini's streamGenerateContent without alt=sse sends
 * one JSON array, element by element).
 */
export async function relayResponse(reply: FastifyReply, res: UpstreamResponse, stream = false): Promise<FastifyReply> {
  void reply.status(res.statusCode);
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined && !DROP_RESPONSE_HEADERS.has(name)) void reply.header(name, value);
  }
  if (stream || String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    // Streams are relayed chunk by chunk; proxies in front of us must not buffer them either.
    void reply.header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
    return reply.send(res.body);
  }
  // A complete answer is relayed in one piece: the same bytes, with less per-chunk work than a stream.
  return res.body.arrayBuffer().then((body) => reply.send(Buffer.from(body)));
}

/** An AbortSignal that fires when the client disconnects before the response is complete. */
export function clientGone(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) controller.abort(new Error('client disconnected'));
  });
  void req;
  return controller.signal;
}
