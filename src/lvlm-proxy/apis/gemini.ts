/**
 * The Gemini API (POST /v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens).
 * An image is a part `{inline_data: {mime_type, data}}` (or `inlineData`/`mimeType`, as the JS SDK
 * writes it) in a content's `parts`; it is compressed and written back in the same spelling. A
 * `file_data` part names a file the provider holds: it passes untouched.
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

/** google.rpc status names by HTTP status, as Google's APIs pair them. */
function statusName(status: number): string {
  const names: Record<number, string> = {
    400: 'INVALID_ARGUMENT',
    401: 'UNAUTHENTICATED',
    403: 'PERMISSION_DENIED',
    404: 'NOT_FOUND',
    409: 'ABORTED',
    429: 'RESOURCE_EXHAUSTED',
    499: 'CANCELLED',
    501: 'UNIMPLEMENTED',
    502: 'UNAVAILABLE',
    503: 'UNAVAILABLE',
    504: 'DEADLINE_EXCEEDED',
  };
  return names[status] ?? (status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL');
}

/** The API key a Gemini client sends: the x-goog-api-key header, or ?key= on the URL. */
const googKey = (headers: Parameters<ApiDialect['clientKey']>[0], query: URLSearchParams) =>
  headerValue(headers, 'x-goog-api-key') ?? query.get('key') ?? undefined;

export const geminiDialect: ApiDialect = {
  api: 'gemini',
  formats: new Set(['png', 'jpeg', 'webp', 'heic', 'heif']),
  forwardHeaders: ['accept', 'x-goog-user-project'],
  keyHint: 'x-goog-api-key: <api key> (or ?key=<api key>)',
  clientKey: (headers, query) => googKey(headers, query) ?? bearerToken(headers),
  clientCredentials(headers, query) {
    const key = googKey(headers, query);
    const authorization = headerValue(headers, 'authorization');
    // A ?key= goes upstream as the header: keys in URLs end up in logs.
    return { ...(key ? { 'x-goog-api-key': key } : {}), ...(authorization ? { authorization } : {}) };
  },
  backendCredentials: (apiKey) => ({ 'x-goog-api-key': apiKey }),
  // Google's shape; the gateway's code is the reason of an ErrorInfo detail (metadata values are strings).
  errorBody: ({ status, code, message, details }) => ({
    error: {
      code: status,
      message,
      status: statusName(status),
      details: [
        {
          '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
          reason: code.toUpperCase(),
          domain: 'vlmpress',
          metadata: {
            code,
            ...Object.fromEntries(Object.entries(details ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
          },
        },
      ],
    },
  }),
};

/** The inline image of a part in either spelling, as a slot; null when the part holds none. */
function inlineSlot(part: Record<string, unknown>, path: string): ImageSlot | null {
  const key = 'inline_data' in part ? 'inline_data' : 'inlineData' in part ? 'inlineData' : null;
  if (!key) return null;
  const field = `${path}.${key}`;
  const blob = part[key];
  if (typeof blob !== 'object' || blob === null) throw new HttpError(400, 'invalid_request', `${field} must be an object`);
  const holder = blob as Record<string, unknown>;
  const mimeKey = 'mime_type' in holder ? 'mime_type' : 'mimeType';
  if (typeof holder['data'] !== 'string') throw new HttpError(400, 'invalid_request', `${field}.data must be a base64 string`);
  const mediaType = typeof holder[mimeKey] === 'string' ? (holder[mimeKey] as string) : undefined;
  return {
    field: `${field}.data`,
    source: { kind: 'inline', mediaType, data: holder['data'] },
    set(file) {
      holder[mimeKey] = imageMime(file.format);
      holder['data'] = base64Of(file.bytes);
    },
  };
}

/** The contents of a generateContent request, or of a countTokens request (its own or its generateContentRequest's). */
function contentsOf(request: Record<string, unknown>): { contents: unknown[]; name: string } {
  const nested = request['generateContentRequest'] ?? request['generate_content_request'];
  if (request['contents'] === undefined && typeof nested === 'object' && nested !== null)
    return { contents: contentsOf(nested as Record<string, unknown>).contents, name: 'generateContentRequest.contents' };
  const contents = request['contents'];
  if (!Array.isArray(contents)) throw new HttpError(400, 'invalid_request', 'contents must be an array');
  return { contents, name: 'contents' };
}

export function readGenerateContentRequest(request: Record<string, unknown>): RequestImages {
  const { contents, name } = contentsOf(request);
  const slots: ImageSlot[] = [];
  const texts: string[] = [];
  let untouched = 0;
  const visit = (part: Record<string, unknown>, path: string) => {
    if (typeof part['text'] === 'string') texts.push(part['text']);
    const slot = inlineSlot(part, path);
    if (slot) slots.push(slot);
    else if ('file_data' in part || 'fileData' in part) untouched++;
  };
  const system = request['systemInstruction'] ?? request['system_instruction'];
  if (typeof system === 'object' && system !== null) eachPart([system], 'systemInstruction', visit, 'parts');
  eachPart(contents, name, visit, 'parts');
  return { slots, prompt: texts.join('\n').slice(0, 100_000), untouched };
}

/** generateContent replays (a streamGenerateContent request is replayed as generateContent: same body). */
export const generateContentReplay: RouteReplay = {
  deterministic(request) {
    const key = 'generation_config' in request ? 'generation_config' : 'generationConfig';
    const config = { ...((request[key] as Record<string, unknown> | undefined) ?? {}) };
    delete config['topP'];
    delete config['top_p'];
    delete config['topK'];
    delete config['top_k'];
    request[key] = { ...config, temperature: 0, seed: 0, ...(key === 'generationConfig' ? { candidateCount: 1 } : { candidate_count: 1 }) };
  },
  answer(body) {
    const candidate = (body as { candidates?: { content?: { parts?: unknown } }[] } | null)?.candidates?.[0];
    const parts = candidate?.content?.parts;
    if (!Array.isArray(parts)) return null;
    const texts: string[] = [];
    const toolCalls: Answer['toolCalls'] = [];
    for (const part of parts as Record<string, unknown>[]) {
      if (typeof part['text'] === 'string' && part['thought'] !== true) texts.push(part['text']);
      const call = (part['functionCall'] ?? part['function_call']) as { name?: unknown; args?: unknown } | undefined;
      if (call) toolCalls.push({ name: String(call.name ?? ''), arguments: JSON.stringify(call.args ?? {}) });
    }
    const usage =
      (body as { usageMetadata?: unknown; usage_metadata?: unknown }).usageMetadata ??
      (body as { usage_metadata?: unknown }).usage_metadata;
    return {
      answer: { text: texts.join(''), toolCalls },
      tokens: sumTokens(usage, ['totalTokenCount']) ?? sumTokens(usage, ['total_token_count']),
    };
  },
};
