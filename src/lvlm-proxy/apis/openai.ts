/**
 * The OpenAI APIs. Chat completions: a content part `{type: "image_url", image_url: {url, detail?}}`
 * (the string form `image_url: "..."` is accepted too). Responses API: an input item's content part
 * `{type: "input_image", image_url: "...", detail}`. Only the URL changes; everything else in the
 * request is forwarded as it came.
 */
import { HttpError } from '../../http/http-error.js';
import { IMAGE_DETAILS, type ImageDetail } from '../../policy/resolution.js';
import {
  bearerToken,
  eachPart,
  headerValue,
  imageDataUrl,
  sumTokens,
  type Answer,
  type ApiDialect,
  type ImageSlot,
  type RequestImages,
  type RouteReplay,
} from './dialect.js';

export const openaiDialect: ApiDialect = {
  api: 'openai',
  // GIF: non-animated only, which the gateway cannot promise; a client GIF still goes as it came.
  formats: new Set(['png', 'jpeg', 'webp', 'gif']),
  forwardHeaders: ['accept', 'openai-organization', 'openai-project', 'openai-beta', 'x-request-id', 'idempotency-key'],
  keyHint: 'Authorization: Bearer <api key>',
  clientKey: (headers) => bearerToken(headers),
  clientCredentials(headers): Record<string, string> {
    const authorization = headerValue(headers, 'authorization');
    return authorization ? { authorization } : {};
  },
  backendCredentials: (apiKey) => ({ authorization: `Bearer ${apiKey}` }),
  // The gateway's own shape: `error.message` and `error.code` are what the OpenAI SDKs read.
  errorBody: ({ code, message, details }) => ({ error: { code, message, ...(details ? { details } : {}) } }),
};

/** The words of a list of messages or input items: string contents and `text` parts. */
function textOf(items: unknown[]): string[] {
  const texts: string[] = [];
  for (const item of items) {
    const content = (item as { content?: unknown } | null)?.content;
    if (typeof content === 'string') texts.push(content);
    else if (Array.isArray(content))
      for (const p of content) if (typeof (p as { text?: unknown } | null)?.text === 'string') texts.push((p as { text: string }).text);
  }
  return texts;
}

const detailOf = (v: unknown) => ((IMAGE_DETAILS as readonly unknown[]).includes(v) ? (v as ImageDetail) : undefined);

function findChatImages(messages: unknown): ImageSlot[] {
  if (!Array.isArray(messages)) throw new HttpError(400, 'invalid_request', 'messages must be an array');
  const slots: ImageSlot[] = [];
  eachPart(messages, 'messages', (p, path) => {
    if (p['type'] !== 'image_url') return;
    const base = `${path}.image_url`;
    const image = p['image_url'];
    if (typeof image === 'string') {
      slots.push({ field: base, source: { kind: 'url', url: image }, set: (file) => void (p['image_url'] = imageDataUrl(file)) });
    } else if (typeof image === 'object' && image !== null && typeof (image as { url?: unknown }).url === 'string') {
      const holder = image as { url: string; detail?: unknown };
      const detail = detailOf(holder.detail);
      slots.push({
        field: `${base}.url`,
        source: { kind: 'url', url: holder.url },
        ...(detail ? { detail } : {}),
        set: (file) => void (holder.url = imageDataUrl(file)),
      });
    } else {
      throw new HttpError(400, 'invalid_request', `${base} must be {"url": "..."}`);
    }
  });
  return slots;
}

/** Chat completions: images in the messages' content parts. */
export function readChatRequest(request: Record<string, unknown>): RequestImages {
  const messages = request['messages'];
  if (!Array.isArray(messages)) throw new HttpError(400, 'invalid_request', 'messages must be an array');
  return { slots: findChatImages(messages), prompt: textOf(messages).join('\n').slice(0, 100_000), untouched: 0 };
}

/**
 * Responses API input: a string (no images) or a list of items whose `content` lists parts. An
 * `input_image` with `image_url` is rewritten; one with only `file_id` refers to a file the backend
 * already holds and passes through untouched.
 */
export function readResponsesRequest(request: Record<string, unknown>): RequestImages {
  const input = request['input'];
  const texts: string[] = [];
  if (typeof request['instructions'] === 'string') texts.push(request['instructions']);
  if (typeof input === 'string') return { slots: [], prompt: [...texts, input].join('\n').slice(0, 100_000), untouched: 0 };
  if (!Array.isArray(input)) throw new HttpError(400, 'invalid_request', 'input must be a string or an array of input items');
  const slots: ImageSlot[] = [];
  let untouched = 0;
  eachPart(input, 'input', (p, path) => {
    if (p['type'] !== 'input_image') return;
    const field = `${path}.image_url`;
    const image = p['image_url'];
    if (image === undefined || image === null) {
      if (typeof p['file_id'] === 'string') return void untouched++;
      throw new HttpError(400, 'invalid_request', `${path} needs image_url or file_id`);
    }
    if (typeof image !== 'string') throw new HttpError(400, 'invalid_request', `${field} must be a string (a data URL or an http(s) URL)`);
    const detail = detailOf(p['detail']);
    slots.push({
      field,
      source: { kind: 'url', url: image },
      ...(detail ? { detail } : {}),
      set: (file) => void (p['image_url'] = imageDataUrl(file)),
    });
  });
  texts.push(...textOf(input));
  return { slots, prompt: texts.join('\n').slice(0, 100_000), untouched };
}

/** A replay seed: the same for every replay, so a backend that honours seeds samples alike. */
const REPLAY_SEED = 0;

export const chatReplay: RouteReplay = {
  deterministic(request) {
    delete request['stream'];
    delete request['stream_options'];
    Object.assign(request, { temperature: 0, seed: REPLAY_SEED, n: 1 });
    delete request['top_p'];
  },
  answer(body) {
    const message = (body as { choices?: { message?: Record<string, unknown> }[] } | null)?.choices?.[0]?.message;
    if (!message) return null;
    const calls = Array.isArray(message['tool_calls'])
      ? (message['tool_calls'] as { function?: { name?: unknown; arguments?: unknown } }[])
      : [];
    const answer: Answer = {
      text: typeof message['content'] === 'string' ? message['content'] : '',
      toolCalls: calls.map((c) => ({ name: String(c.function?.name ?? ''), arguments: String(c.function?.arguments ?? '') })),
    };
    return { answer, tokens: sumTokens((body as { usage?: unknown }).usage, ['prompt_tokens', 'completion_tokens']) };
  },
};

export const responsesReplay: RouteReplay = {
  deterministic(request) {
    delete request['stream'];
    delete request['top_p'];
    // The Responses API takes no seed; a stored response would also be billed for storage.
    Object.assign(request, { temperature: 0, store: false });
  },
  answer(body) {
    const output = (body as { output?: unknown } | null)?.output;
    if (!Array.isArray(output)) return null;
    const texts: string[] = [];
    const toolCalls: Answer['toolCalls'] = [];
    for (const item of output as Record<string, unknown>[]) {
      if (item['type'] === 'function_call')
        toolCalls.push({ name: String(item['name'] ?? ''), arguments: String(item['arguments'] ?? '') });
      if (item['type'] === 'message' && Array.isArray(item['content']))
        for (const part of item['content'] as Record<string, unknown>[]) if (typeof part['text'] === 'string') texts.push(part['text']);
    }
    return {
      answer: { text: texts.join('\n'), toolCalls },
      tokens: sumTokens((body as { usage?: unknown }).usage, ['input_tokens', 'output_tokens']),
    };
  },
};
