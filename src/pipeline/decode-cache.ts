/**
 * Reconstructions of recently decoded bitstreams, so that the proxy does not decode the same stored
 * image again for every chat turn that repeats it (a conversation resends its whole history, images
 * included). Decoding is deterministic, so the bitstream's SHA-256 and the output format are a
 * complete key. Bounded by bytes, least recently used out first; concurrent requests for the same
 * key share one decode instead of racing.
 */
import { createHash } from 'node:crypto';
import type { DecodeJobResult } from '../workers/jobs.js';

/** a rough per-entry overhead (key, metadata, map slot) so that many tiny images still count */
const ENTRY_OVERHEAD = 512;

export type DecodeCacheOutcome = 'hit' | 'miss' | 'shared';

export class DecodeCache {
  private readonly entries = new Map<string, DecodeJobResult>();
  private readonly pending = new Map<string, Promise<DecodeJobResult>>();
  private used = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly hooks: { outcome?: (outcome: DecodeCacheOutcome) => void; bytes?: (bytes: number) => void } = {},
  ) {}

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }

  static key(bitstream: Uint8Array, format: string): string {
    return `${createHash('sha256').update(bitstream).digest('hex')}:${format}`;
  }

  /** The cached reconstruction for `key`, or `decode()`'s, which is then kept when it fits. */
  async get(key: string, decode: () => Promise<DecodeJobResult>): Promise<DecodeJobResult> {
    const found = this.entries.get(key);
    if (found) {
      // Re-insert: Map iteration order is insertion order, so the oldest entry is the first one.
      this.entries.delete(key);
      this.entries.set(key, found);
      this.hooks.outcome?.('hit');
      return found;
    }
    const running = this.pending.get(key);
    if (running) {
      this.hooks.outcome?.('shared');
      return running;
    }
    this.hooks.outcome?.('miss');
    const work = decode().then(
      (result) => {
        this.pending.delete(key);
        this.remember(key, result);
        return result;
      },
      (e: unknown) => {
        // Failures are not cached: a bad bitstream fails again cheaply, a transient error may not repeat.
        this.pending.delete(key);
        throw e;
      },
    );
    this.pending.set(key, work);
    return work;
  }

  /** Keep a reconstruction made elsewhere (an encode job that decoded its own bitstream). */
  put(key: string, result: DecodeJobResult): void {
    if (!this.entries.has(key)) this.remember(key, result);
  }

  private remember(key: string, result: DecodeJobResult): void {
    const cost = result.image.length + ENTRY_OVERHEAD;
    if (cost > this.maxBytes) return;
    this.entries.set(key, result);
    this.used += cost;
    for (const [oldest, value] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.used -= value.image.length + ENTRY_OVERHEAD;
    }
    this.hooks.bytes?.(this.used);
  }
}
