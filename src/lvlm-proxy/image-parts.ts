/**
 * Finding and rewriting the images of an OpenAI request. Chat completions: a content part
 * `{type: "image_url", image_url: {url, detail?}}` (the string form `image_url: "..."` is accepted
 * too). Responses API: an input item's content part `{type: "input_image", image_url: "...",
 * detail}`. Only the URL changes; everything else in the request is forwarded as it came.
 */
import { HttpError } from '../http/http-error.js';

export interface ImageSlot {
  /** JSON path used in error messages, e.g. messages[1].content[2].image_url.url */
  field: string;
  url: string;
  /** OpenAI's `detail` (low, high, auto): how much of the image the backend will look at */
  detail?: 'low' | 'high' | 'auto';
  /** put the rewritten URL back where it came from */
  set(url: string): void;
}

/** Every object part of every item's `content` list, with its JSON path; items must be objects. */
function eachPart(items: unknown[], name: string, visit: (part: Record<string, unknown>, path: string) => void): void {
  items.forEach((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new HttpError(400, 'invalid_request', `${name}[${i}] must be an object`);
    const content = (item as { content?: unknown }).content;
    if (!Array.isArray(content)) return;
    content.forEach((part: unknown, j) => {
      if (typeof part === 'object' && part !== null) visit(part as Record<string, unknown>, `${name}[${i}].content[${j}]`);
    });
  });
}

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

const DETAILS = ['low', 'high', 'auto'] as const;
const detailOf = (v: unknown) => ((DETAILS as readonly unknown[]).includes(v) ? (v as ImageSlot['detail']) : undefined);

export function findImageParts(messages: unknown): ImageSlot[] {
  if (!Array.isArray(messages)) throw new HttpError(400, 'invalid_request', 'messages must be an array');
  const slots: ImageSlot[] = [];
  eachPart(messages, 'messages', (p, path) => {
    if (p['type'] !== 'image_url') return;
    const base = `${path}.image_url`;
    const image = p['image_url'];
    if (typeof image === 'string') {
      slots.push({ field: base, url: image, set: (url) => void (p['image_url'] = url) });
    } else if (typeof image === 'object' && image !== null && typeof (image as { url?: unknown }).url === 'string') {
      const holder = image as { url: string; detail?: unknown };
      const detail = detailOf(holder.detail);
      slots.push({ field: `${base}.url`, url: holder.url, ...(detail ? { detail } : {}), set: (url) => void (holder.url = url) });
    } else {
      throw new HttpError(400, 'invalid_request', `${base} must be {"url": "..."}`);
    }
  });
  return slots;
}

/** The words of a chat request, for the task classifier. */
export function chatPromptText(messages: unknown[]): string {
  return textOf(messages).join('\n').slice(0, 100_000);
}

/**
 * Responses API input: a string (no images) or a list of items whose `content` lists parts. An
 * `input_image` with `image_url` is rewritten; one with only `file_id` refers to a file the backend
 * already holds and passes through untouched.
 */
export function findResponsesImageParts(input: unknown): ImageSlot[] {
  if (typeof input === 'string') return [];
  if (!Array.isArray(input)) throw new HttpError(400, 'invalid_request', 'input must be a string or an array of input items');
  const slots: ImageSlot[] = [];
  eachPart(input, 'input', (p, path) => {
    if (p['type'] !== 'input_image') return;
    const field = `${path}.image_url`;
    const image = p['image_url'];
    if (image === undefined || image === null) {
      if (typeof p['file_id'] === 'string') return;
      throw new HttpError(400, 'invalid_request', `${path} needs image_url or file_id`);
    }
    if (typeof image !== 'string') throw new HttpError(400, 'invalid_request', `${field} must be a string (a data URL or an http(s) URL)`);
    const detail = detailOf(p['detail']);
    slots.push({ field, url: image, ...(detail ? { detail } : {}), set: (url) => void (p['image_url'] = url) });
  });
  return slots;
}

/** The words of a Responses API request (instructions and text parts), for the task classifier. */
export function responsesPromptText(request: Record<string, unknown>): string {
  const texts: string[] = [];
  if (typeof request['instructions'] === 'string') texts.push(request['instructions']);
  const input = request['input'];
  if (typeof input === 'string') texts.push(input);
  else if (Array.isArray(input)) texts.push(...textOf(input));
  return texts.join('\n').slice(0, 100_000);
}
