/**
 * Filesystem bitstream store (the default): DATA_DIR/bitstreams/ab/<id>.vlmp with a JSON sidecar,
 * DATA_DIR/cache/ab/<key> holding an id. Files are written to a temporary name, flushed (file, then
 * directory) and renamed into place, so neither a crash nor a power cut leaves a partial file under a
 * real name once a write is acknowledged. Reads re-hash the bytes: an entry that was damaged anyway
 * (disk, operator) is counted, removed and reported as a miss, so the next request rewrites it
 * instead of failing on it forever.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  bitstreamId,
  ID_PATTERN,
  parseStoredMeta,
  type BitstreamStore,
  type CorruptEntryListener,
  type StoredMeta,
} from './bitstream-store.js';
import { indexedId } from './cache-index.js';

async function fsyncPath(p: string, flags: 'r' | 'r+'): Promise<void> {
  const fh = await open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function writeDurable(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
  // The rename itself is durable only once the directory entry is flushed.
  await fsyncPath(dir, 'r');
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
  constructor(
    private readonly dir: string,
    private readonly onCorrupt: CorruptEntryListener = () => {},
  ) {}

  private bitstreamPath(id: string): string {
    return path.join(this.dir, 'bitstreams', id.slice(0, 2), `${id}.vlmp`);
  }

  private metaPath(id: string): string {
    return path.join(this.dir, 'bitstreams', id.slice(0, 2), `${id}.json`);
  }

  async put(bitstream: Uint8Array, meta: StoredMeta): Promise<string> {
    const id = bitstreamId(bitstream);
    // Rewrite unless a sound copy is there already (a damaged one is replaced, not kept).
    if ((await this.get(id)) === null) {
      // Sidecar first: a bitstream file under its id always has its metadata beside it.
      await writeDurable(this.metaPath(id), JSON.stringify(meta));
      await writeDurable(this.bitstreamPath(id), bitstream);
    }
    return id;
  }

  async get(id: string): Promise<{ bitstream: Uint8Array; meta: StoredMeta } | null> {
    if (!ID_PATTERN.test(id)) return null;
    const bitstream = await readOrNull(this.bitstreamPath(id));
    if (!bitstream) return null;
    if (bitstreamId(bitstream) !== id) return this.discard(id, 'bitstream');
    const metaText = await readOrNull(this.metaPath(id));
    const meta = metaText ? parseStoredMeta(metaText) : null;
    if (!meta) return this.discard(id, 'meta');
    return { bitstream: new Uint8Array(bitstream), meta };
  }

  private async discard(id: string, part: 'bitstream' | 'meta'): Promise<null> {
    this.onCorrupt(part);
    await rm(this.bitstreamPath(id), { force: true });
    await rm(this.metaPath(id), { force: true });
    return null;
  }

  async lookup(key: string): Promise<string | null> {
    if (!ID_PATTERN.test(key)) return null;
    const id = (await readOrNull(path.join(this.dir, 'cache', key.slice(0, 2), key)))?.toString('utf8') ?? null;
    return indexedId(id, this.onCorrupt);
  }

  async remember(key: string, id: string): Promise<void> {
    await writeDurable(path.join(this.dir, 'cache', key.slice(0, 2), key), id);
  }

  async close(): Promise<void> {}
}
