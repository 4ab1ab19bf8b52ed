/**
 * Filesystem bitstream store (the default): DATA_DIR/bitstreams/ab/<id>.vlmp with a JSON sidecar,
 * DATA_DIR/cache/ab/<key> holding an id. Files are written to a temporary name and renamed into
 * place, so a crash never leaves a partial bitstream under a real id; reads re-hash the bytes, so a
 * damaged file is reported, not served.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bitstreamId, ID_PATTERN, type BitstreamStore, type StoredMeta } from './bitstream-store.js';

export class StoreCorruptionError extends Error {
  constructor(id: string) {
    super(`stored bitstream ${id} does not match its hash`);
    this.name = 'StoreCorruptionError';
  }
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, file);
}

async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export class FsBitstreamStore implements BitstreamStore {
  readonly kind = 'filesystem' as const;
  constructor(private readonly dir: string) {}

  private bitstreamPath(id: string): string {
    return path.join(this.dir, 'bitstreams', id.slice(0, 2), `${id}.vlmp`);
  }

  async put(bitstream: Uint8Array, meta: StoredMeta): Promise<string> {
    const id = bitstreamId(bitstream);
    const file = this.bitstreamPath(id);
    if ((await readOrNull(file)) === null) {
      await writeAtomic(`${file.slice(0, -5)}.json`, JSON.stringify(meta));
      await writeAtomic(file, bitstream);
    }
    return id;
  }

  async get(id: string): Promise<{ bitstream: Uint8Array; meta: StoredMeta } | null> {
    if (!ID_PATTERN.test(id)) return null;
    const file = this.bitstreamPath(id);
    const bitstream = await readOrNull(file);
    if (!bitstream) return null;
    if (bitstreamId(bitstream) !== id) throw new StoreCorruptionError(id);
    const meta = await readOrNull(`${file.slice(0, -5)}.json`);
    return { bitstream: new Uint8Array(bitstream), meta: meta ? (JSON.parse(meta.toString('utf8')) as StoredMeta) : ({} as StoredMeta) };
  }

  async lookup(key: string): Promise<string | null> {
    if (!ID_PATTERN.test(key)) return null;
    const id = (await readOrNull(path.join(this.dir, 'cache', key.slice(0, 2), key)))?.toString('utf8') ?? null;
    return id && ID_PATTERN.test(id) ? id : null;
  }

  async remember(key: string, id: string): Promise<void> {
    await writeAtomic(path.join(this.dir, 'cache', key.slice(0, 2), key), id);
  }

  async close(): Promise<void> {}
}
