/**
 * Where bitstreams live. Content-addressed: a bitstream's id is the SHA-256 of its bytes, so storing
 * the same bitstream twice is a no-op and a stored one can never be silently replaced. A cache index
 * maps (image, settings, model) to the id, so an identical request is encoded once.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_CODEC, type ResizeRule } from '../codec/index.js';

export interface StoredMeta {
  width: number;
  height: number;
  quality: number;
  model: { name: string; id: string };
  source: { format: string; width: number; height: number; bytes: number };
  createdAt: string;
}

export interface BitstreamStore {
  readonly kind: 'filesystem' | 'redis' | 's3';
  put(bitstream: Uint8Array, meta: StoredMeta): Promise<string>;
  get(id: string): Promise<{ bitstream: Uint8Array; meta: StoredMeta } | null>;
  lookup(cacheKey: string): Promise<string | null>;
  remember(cacheKey: string, id: string): Promise<void>;
  close(): Promise<void>;
}

/** The store cannot be reached or refuses us (down, bad credentials): the request gets 503 store_unavailable. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Called when a stored entry fails its hash or does not parse (it is then treated as a miss). */
export type CorruptEntryListener = (part: 'bitstream' | 'meta' | 'cache') => void;

/** Stored metadata from its JSON text, or null when it does not parse as an object (a damaged entry). */
export function parseStoredMeta(text: Buffer | string): StoredMeta | null {
  try {
    const meta = JSON.parse(text.toString('utf8')) as unknown;
    return meta && typeof meta === 'object' && !Array.isArray(meta) ? (meta as StoredMeta) : null;
  } catch {
    return null;
  }
}

export function bitstreamId(bitstream: Uint8Array): string {
  return createHash('sha256').update(bitstream).digest('hex');
}

export const ID_PATTERN = /^[0-9a-f]{64}$/;

/** The cache key of an encode request: everything that changes the bitstream. */
export function cacheKey(
  image: Uint8Array,
  settings: { codec?: string; quality: number; maxBytes?: number; resize: ResizeRule; modelId: string },
): string {
  const h = createHash('sha256').update(image);
  const { maxLongSide, maxShortSide, maxPixels } = settings.resize;
  h.update(
    JSON.stringify([
      settings.quality,
      settings.maxBytes ?? null,
      [maxLongSide, maxShortSide ?? null, maxPixels ?? null],
      settings.modelId,
      settings.codec ?? DEFAULT_CODEC,
    ]),
  );
  return h.digest('hex');
}
