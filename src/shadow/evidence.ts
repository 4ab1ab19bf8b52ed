/**
 * Shadow verdict counts: for each backend, model, task class and codec, how many replays at each
 * quality were compared with the answer on the original images, and how many agreed. Nothing of the
 * prompts or answers is kept. With Redis every gateway adds to the same counts (one hash, HINCRBY);
 * embedded, they live in a JSON file in the data folder. Both survive restarts.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';

export interface EvidenceKey {
  backend: string;
  model: string;
  taskClass: string;
  codec: string;
}

export interface PointCounts {
  n: number;
  agree: number;
}

export interface EvidenceRow extends EvidenceKey {
  quality: number;
  n: number;
  agree: number;
}

export interface EvidenceStore {
  add(key: EvidenceKey, quality: number, agree: boolean): Promise<void>;
  /** every key and quality with its counts */
  all(): Promise<EvidenceRow[]>;
}

/** One field name per key and quality; tabs cannot occur in names the gateway routes by. */
const field = (k: EvidenceKey, quality: number) => [k.backend, k.model, k.taskClass, k.codec, String(quality)].join('\t');

function parseField(name: string): (EvidenceKey & { quality: number }) | null {
  const parts = name.split('\t');
  if (parts.length !== 5 || !Number.isFinite(Number(parts[4]))) return null;
  const [backend, model, taskClass, codec, quality] = parts as [string, string, string, string, string];
  return { backend, model, taskClass, codec, quality: Number(quality) };
}

function rowsOf(counts: Map<string, PointCounts>): EvidenceRow[] {
  return [...counts].flatMap(([name, c]) => {
    const k = parseField(name);
    return k ? [{ ...k, ...c }] : [];
  });
}

export class RedisEvidence implements EvidenceStore {
  private readonly hash: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.hash = `${prefix}:shadow:evidence`;
  }

  async add(key: EvidenceKey, quality: number, agree: boolean): Promise<void> {
    const f = field(key, quality);
    const tx = this.redis.multi().hincrby(this.hash, `${f}\tn`, 1);
    if (agree) tx.hincrby(this.hash, `${f}\tagree`, 1);
    await tx.exec();
  }

  async all(): Promise<EvidenceRow[]> {
    const raw = await this.redis.hgetall(this.hash);
    const counts = new Map<string, PointCounts>();
    for (const [name, value] of Object.entries(raw)) {
      const at = name.lastIndexOf('\t');
      const point = name.slice(0, at);
      const c = counts.get(point) ?? { n: 0, agree: 0 };
      if (name.slice(at + 1) === 'n') c.n = Number(value);
      else c.agree = Number(value);
      counts.set(point, c);
    }
    return rowsOf(counts);
  }
}

export class FileEvidence implements EvidenceStore {
  private counts = new Map<string, PointCounts>();
  private loaded: Promise<void>;
  /** writes one after another, each the whole (small) file, replaced atomically */
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'shadow-evidence.json');
    this.loaded = readFile(this.file, 'utf8').then(
      (text) => {
        const parsed = JSON.parse(text) as Record<string, PointCounts>;
        this.counts = new Map(Object.entries(parsed).filter(([, c]) => Number.isInteger(c?.n) && Number.isInteger(c?.agree)));
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      },
    );
  }

  async add(key: EvidenceKey, quality: number, agree: boolean): Promise<void> {
    await this.loaded;
    const f = field(key, quality);
    const c = this.counts.get(f) ?? { n: 0, agree: 0 };
    this.counts.set(f, { n: c.n + 1, agree: c.agree + (agree ? 1 : 0) });
    const snapshot = JSON.stringify(Object.fromEntries(this.counts));
    this.writing = this.writing.then(async () => {
      await writeFile(`${this.file}.tmp`, snapshot);
      await rename(`${this.file}.tmp`, this.file);
    });
    await this.writing;
  }

  async all(): Promise<EvidenceRow[]> {
    await this.loaded;
    return rowsOf(this.counts);
  }
}
