/**
 * The Anthropic Messages API (POST /v1/messages and /v1/messages/count_tokens). An image is a content
 * block `{type: "image", source: {type: "base64", media_type, data} | {type: "url", url} | {type:
 * "file", file_id}}`, in a user message or inside a `tool_result` block's content. Base64 and URL
 * sources are compressed and written back as base64; file sources are the provider's and pass untouched.
 */
import { HttpError } from '../../http/http-error.js';
import {
  base64Of,
  bearerToken,
  eachPart,
  headerValue,
  imageMime,
  sumTokens,
  type Answer,
  type ApiDialect,
  type ImageSlot,
  type RequestImages,
  type RouteReplay,
} from './dialect.js';

/** Anthropic's error types by HTTP status (its SDKs pick an exception class by status, and show the type). */
function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'overloaded_error';
  if (status === 504) return 'timeout_error';
  return status < 500 ? 'invalid_request_error' : 'api_error';
}

export const anthropicDialect: ApiDialect = {
  api: 'anthropic',
  formats: new Set(['jpeg', 'png', 'gif', 'webp']),
  forwardHeaders: ['accept', 'anthropic-version', 'anthropic-beta', 'idempotency-key'],
  keyHint: 'x-api-key: <api key> (or Authorization: Bearer <api key>)',
  clientKey: (headers) => headerValue(headers, 'x-api-key') ?? bearerToken(headers),
  clientCredentials(headers) {
    const key = headerValue(headers, 'x-api-key');
    const authorization = headerValue(headers, 'authorization');
    return { ...(key ? { 'x-api-key': key } : {}), ...(authorization ? { authorization } : {}) };
  },
  backendCredentials: (apiKey) => ({ 'x-api-key': apiKey }),
  // Anthropic's shape, with the gateway's machine-readable code beside its type.
  errorBody: ({ status, code, message, details }) => ({
    type: 'error',
    error: { type: errorType(status), message, code, ...(details ? { details } : {}) },
  }),
};

/** An image block's source as a slot (null: a file the provider holds, left alone). */
function imageSlot(block: Record<string, unknown>, path: string): ImageSlot | null {
  const source = block['source'];
  const field = `${path}.source`;
  if (typeof source !== 'object' || source === null) throw new HttpError(400, 'invalid_request', `${field} must be an object`);
  const s = source as Record<string, unknown>;
  // Whatever the client gave, the backend gets base64 of what the gateway sends.
  const set: ImageSlot['set'] = (file) =>
    void (block['source'] = { type: 'base64', media_type: imageMime(file.format), data: base64Of(file.bytes) });
  if (s['type'] === 'base64') {
    if (typeof s['data'] !== 'string') throw new HttpError(400, 'invalid_request', `${field}.data must be a base64 string`);
    const mediaType = typeof s['media_type'] === 'string' ? s['media_type'] : undefined;
    return { field: `${field}.data`, source: { kind: 'inline', mediaType, data: s['data'] }, set };
  }
  if (s['type'] === 'url') {
    if (typeof s['url'] !== 'string') throw new HttpError(400, 'invalid_request', `${field}.url must be a string`);
    return { field: `${field}.url`, source: { kind: 'url', url: s['url'] }, set };
  }
  if (s['type'] === 'file') return null;
  throw new HttpError(400, 'invalid_request', `${field}.type must be base64, url or file`);
}

/** The images and words of a Messages request (or of a count_tokens request, which has the same fields). */
export function readMessagesRequest(request: Record<string, unknown>): RequestImages {
  const messages = request['messages'];
  if (!Array.isArray(messages)) throw new HttpError(400, 'invalid_request', 'messages must be an array');
  const slots: ImageSlot[] = [];
  const texts: string[] = [];
  let untouched = 0;
  const system = request['system'];
  if (typeof system === 'string') texts.push(system);
  else if (Array.isArray(system)) for (const b of system) if (typeof b?.text === 'string') texts.push(b.text);
  const visit = (block: Record<string, unknown>, path: string) => {
    if (block['type'] === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
    else if (block['type'] === 'image') {
      const slot = imageSlot(block, path);
      if (slot) slots.push(slot);
      else untouched++;
    } else if (block['type'] === 'tool_result' && Array.isArray(block['content'])) {
      // A tool's answer may carry images (a screenshot tool): they cost the same and are compressed too.
      eachPart([block], path, (inner, innerPath) => visit(inner, innerPath.replace(`${path}[0]`, path)));
    } else if (block['type'] === 'tool_result' && typeof block['content'] === 'string') texts.push(block['content']);
  };
  eachPart(messages, 'messages', (block, path) => visit(block, path));
  for (const m of messages) if (typeof m?.content === 'string') texts.push(m.content);
  return { slots, prompt: texts.join('\n').slice(0, 100_000), untouched };
}

export const messagesReplay: RouteReplay = {
  deterministic(request) {
    delete request['stream'];
    delete request['top_p'];
    delete request['top_k'];
    // The Messages API takes no seed: temperature 0 is as deterministic as it gets.
    request['temperature'] = 0;
  },
  answer(body) {
    const content = (body as { content?: unknown } | null)?.content;
    if (!Array.isArray(content)) return null;
    const texts: string[] = [];
    const toolCalls: Answer['toolCalls'] = [];
    for (const block of content as Record<string, unknown>[]) {
      if (block['type'] === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
      if (block['type'] === 'tool_use')
        toolCalls.push({ name: String(block['name'] ?? ''), arguments: JSON.stringify(block['input'] ?? {}) });
    }
    return {
      answer: { text: texts.join('\n'), toolCalls },
      tokens: sumTokens((body as { usage?: unknown }).usage, ['input_tokens', 'output_tokens']),
    };
  },
};
