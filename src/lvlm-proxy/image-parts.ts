/**
 * Finding and rewriting the images of an OpenAI chat request. An image is a content part
 * `{type: "image_url", image_url: {url, detail?}}` (the string form `image_url: "..."` is accepted
 * too); only its URL changes, everything else in the request is forwarded as it came.
 */
import { HttpError } from '../server/errors.js';

export interface ImageSlot {
  /** JSON path used in error messages, e.g. messages[1].content[2].image_url.url */
  field: string;
  url: string;
  /** OpenAI's `detail` (low, high, auto): how much of the image the backend will look at */
  detail?: 'low' | 'high' | 'auto';
  /** put the rewritten URL back where it came from */
  set(url: string): void;
}

export function findImageParts(messages: unknown): ImageSlot[] {
  if (!Array.isArray(messages)) throw new HttpError(400, 'invalid_request', 'messages must be an array');
  const slots: ImageSlot[] = [];
  messages.forEach((message: unknown, i) => {
    if (typeof message !== 'object' || message === null) throw new HttpError(400, 'invalid_request', `messages[${i}] must be an object`);
    const content = (message as { content?: unknown }).content;
    if (!Array.isArray(content)) return;
    content.forEach((part: unknown, j) => {
      if (typeof part !== 'object' || part === null || (part as { type?: unknown }).type !== 'image_url') return;
      const p = part as { image_url?: unknown };
      const base = `messages[${i}].content[${j}].image_url`;
      if (typeof p.image_url === 'string') {
        slots.push({ field: base, url: p.image_url, set: (url) => void (p.image_url = url) });
      } else if (typeof p.image_url === 'object' && p.image_url !== null && typeof (p.image_url as { url?: unknown }).url === 'string') {
        const holder = p.image_url as { url: string; detail?: unknown };
        const detail = holder.detail === 'low' || holder.detail === 'high' || holder.detail === 'auto' ? holder.detail : undefined;
        slots.push({ field: `${base}.url`, url: holder.url, ...(detail ? { detail } : {}), set: (url) => void (holder.url = url) });
      } else {
        throw new HttpError(400, 'invalid_request', `${base} must be {"url": "..."}`);
      }
    });
  });
  return slots;
}
