/**
 * What the proxy needs to know about one LVLM API (OpenAI, Anthropic Messages, Gemini) to serve it
 * natively: where a request's images and words are, how each image is written back, which image
 * formats the API reads, how clients and backends present their keys, and its error shape. One
 * shared flow (src/routes/proxy-flow.ts) does everything else for every API.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { HttpError } from '../../http/http-error.js';
import type { LvlmApi } from '../../config/backends-file.js';
import type { ImageDetail } from '../../policy/resolution.js';

export type { LvlmApi } from '../../config/backends-file.js';

/** An image as the client gave it: a URL (http(s) or data URL), or base64 with its declared media type. */
export type ImageSource = { kind: 'url'; url: string } | { kind: 'inline'; mediaType: string | undefined; data: string };

/** An image file to send upstream in place of the client's. */
export interface UpstreamFile {
  format: string;
  bytes: Uint8Array;
}

export interface ImageSlot {
  /** JSON path used in error messages, e.g. messages[1].content[2].source */
  field: string;
  source: ImageSource;
  /** OpenAI's `detail` (low, high, auto): how much of the image the backend will look at */
  detail?: ImageDetail;
  /** put the image sent upstream where the client's was, in the API's own form */
  set(file: UpstreamFile): void;
}

/** What a request holds for the proxy: its images to compress, its words (for the task classifier). */
export interface RequestImages {
  slots: ImageSlot[];
  prompt: string;
  /** images the gateway leaves alone and does not count as compressed (files the provider already holds) */
  untouched: number;
}

/** An answer reduced to what shadow evaluation compares (src/shadow/agreement.ts). */
export interface Answer {
  text: string;
  toolCalls: { name: string; arguments: string }[];
}

/** A complete (non-streamed) answer read back: what it says, and the tokens the backend billed for it. */
export interface ReadAnswer {
  answer: Answer;
  /** prompt (images included) plus completion tokens as the backend reports them; null when it does not */
  tokens: number | null;
}

/**
 * What replaying a route's request needs (shadow evaluation): the request made non-streaming and as
 * deterministic as the API allows, and its answer read back.
 */
export interface RouteReplay {
  /** sets the fields of a copy of the request in place: no stream, temperature 0, a fixed seed where the API takes one */
  deterministic(request: Record<string, unknown>): void;
  /** the answer of a successful non-streamed call; null when the body is not one */
  answer(body: unknown): ReadAnswer | null;
}

/** A number field of a usage object, summed over `fields` (null when none is a number). */
export function sumTokens(usage: unknown, fields: string[]): number | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const values = fields.map((f) => (usage as Record<string, unknown>)[f]).filter((v): v is number => typeof v === 'number');
  return values.length ? values.reduce((a, b) => a + b, 0) : null;
}

/** One error of the gateway's, before it takes an API's shape. */
export interface GatewayError {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown> | undefined;
}

export interface ApiDialect {
  api: LvlmApi;
  /** image formats the API reads (sharp's names): a client image in one of them may go as it came */
  formats: ReadonlySet<string>;
  /** client request headers forwarded as they came */
  forwardHeaders: readonly string[];
  /** where a client puts its key, for the 401 that says it is missing */
  keyHint: string;
  /** the key a client presents on this API's routes (checked against VLMPRESS_API_KEYS) */
  clientKey(headers: IncomingHttpHeaders, query: URLSearchParams): string | undefined;
  /**
   * The client's own credential headers, forwarded when neither the gateway nor the backend has keys
   * (the client then talks to its provider with its own key, through the gateway).
   */
  clientCredentials(headers: IncomingHttpHeaders, query: URLSearchParams): Record<string, string>;
  /** the headers that carry a backend's API key */
  backendCredentials(apiKey: string): Record<string, string>;
  /** a gateway error in the API's error shape, so its SDKs raise their usual exceptions */
  errorBody(error: GatewayError): unknown;
}

/** The MIME type of an image format the gateway sends (sharp's names: png, jpeg, webp, avif, gif, heif). */
export const imageMime = (format: string) => `image/${format}`;

export const base64Of = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64');

export const imageDataUrl = (file: UpstreamFile) => `data:${imageMime(file.format)};base64,${base64Of(file.bytes)}`;

/** Every object part of every item's `content` list (or of `field`), with its JSON path; items must be objects. */
export function eachPart(
  items: unknown[],
  name: string,
  visit: (part: Record<string, unknown>, path: string) => void,
  field = 'content',
): void {
  items.forEach((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new HttpError(400, 'invalid_request', `${name}[${i}] must be an object`);
    const content = (item as Record<string, unknown>)[field];
    if (!Array.isArray(content)) return;
    content.forEach((part: unknown, j) => {
      if (typeof part === 'object' && part !== null) visit(part as Record<string, unknown>, `${name}[${i}].${field}[${j}]`);
    });
  });
}

/** A header's single string value (the first of a repeated one). */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The token of `Authorization: Bearer <token>`. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(headerValue(headers, 'authorization') ?? '');
  return m ? m[1]!.trim() : undefined;
}
