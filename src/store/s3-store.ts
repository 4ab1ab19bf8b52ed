/**
 * S3-compatible object-storage bitstream store (AWS S3, GCS's S3 API, R2, Ceph RGW, SeaweedFS): for
 * many gateway replicas without holding a week of images in Redis memory. One object per bitstream,
 * `<prefix>bitstreams/<id>`, its metadata in the object's user metadata, so a read is one GET. The
 * encode-cache index lives in Redis when the gateway has one (small, hot), else as small objects
 * `<prefix>cache/<key>` in the bucket. A write is one conditional PUT (If-None-Match: *; HEAD and PUT
 * where the server does not take it). Reads re-hash the bytes: a damaged object is counted, deleted
 * and a miss. Expiry is the bucket's lifecycle rule (docs/deployment.md); nothing here lists the
 * bucket. Unreachable store or refused credentials: StoreUnavailableError (503 store_unavailable),
 * after the SDK's retries with backoff.
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import {
  bitstreamId,
  ID_PATTERN,
  parseStoredMeta,
  StoreUnavailableError,
  type BitstreamStore,
  type CorruptEntryListener,
  type StoredMeta,
} from './bitstream-store.js';
import { indexedId, type CacheIndex } from './cache-index.js';

export interface S3StoreSettings {
  /** an S3-compatible server's URL; unset: AWS S3 of `region` */
  endpoint?: string | undefined;
  region: string;
  bucket: string;
  /** prepended to every object key, e.g. `vlmpress/` */
  prefix: string;
  /** bucket in the path (`endpoint/bucket/key`), as most servers other than AWS need */
  forcePathStyle: boolean;
  /** static credentials; unset: the SDK's standard chain (shared files, web identity, instance role) */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string | undefined } | undefined;
  /** attempts per request, retried with exponential backoff and jitter (SDK standard mode) */
  maxAttempts?: number;
  /** ms for a connection, and for a whole request */
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
}

/** The user-metadata field holding StoredMeta (base64url JSON: metadata values must be ASCII). */
const META_FIELD = 'vlmpress-meta';

export function s3Client(s: S3StoreSettings): S3Client {
  return new S3Client({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    ...(s.credentials ? { credentials: s.credentials } : {}),
    maxAttempts: s.maxAttempts ?? 3,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: s.connectTimeoutMs ?? 2000,
      requestTimeout: s.requestTimeoutMs ?? 10_000,
      throwOnRequestTimeout: true,
    },
    // Integrity is our own SHA-256; the SDK's default CRC trailers (aws-chunked uploads) are not
    // understood by every S3-compatible server.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

const isMissing = (e: unknown) =>
  status(e) === 404 || (e instanceof S3ServiceException && (e.name === 'NoSuchKey' || e.name === 'NotFound'));

/** Any failure but a missing object: the store is down, slow, or refuses us. */
function unavailable(what: string, e: unknown): StoreUnavailableError {
  const code = status(e);
  const reason = e instanceof S3ServiceException ? `${e.name}${code ? ` (HTTP ${code})` : ''}: ${e.message}` : (e as Error).message;
  return new StoreUnavailableError(`the object store is unavailable (${what}: ${reason}); retry shortly`, { cause: e });
}

/**
 * Checks the bucket once, at start-up: a missing bucket or refused credentials stop the gateway
 * with a clear message instead of failing every request later.
 */
export async function checkBucket(client: S3Client, s: S3StoreSettings): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: s.bucket }));
  } catch (e) {
    const where = `${s.endpoint ?? `AWS S3 (${s.region})`}`;
    if (isMissing(e))
      throw new Error(`VLMPRESS_S3_BUCKET: bucket "${s.bucket}" does not exist at ${where}; create it (and its lifecycle rule) first`, {
        cause: e,
      });
    if (status(e) === 403)
      throw new Error(`VLMPRESS_S3_BUCKET: access to bucket "${s.bucket}" at ${where} is refused: check the credentials and their policy`, {
        cause: e,
      });
    throw new Error(`VLMPRESS_S3_ENDPOINT: cannot reach bucket "${s.bucket}" at ${where}: ${(e as Error).message}`, { cause: e });
  }
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  return Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
}

/** The index in the bucket, for gateways without Redis: one tiny object per cache key. */
export class BucketCacheIndex implements CacheIndex {
  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly onCorrupt: CorruptEntryListener,
  ) {}

  async lookup(cacheKey: string): Promise<string | null> {
    if (!ID_PATTERN.test(cacheKey)) return null;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}cache/${cacheKey}` }));
      return indexedId((await bodyBytes(r.Body)).toString('utf8'), this.onCorrupt);
    } catch (e) {
      if (isMissing(e)) return null;
      throw unavailable('cache lookup', e);
    }
  }

  async remember(cacheKey: string, id: string): Promise<void> {
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: `${this.prefix}cache/${cacheKey}`, Body: id, ContentType: 'text/plain' }),
      );
    } catch (e) {
      throw unavailable('cache write', e);
    }
  }
}

export class S3BitstreamStore implements BitstreamStore {
  readonly kind = 's3' as const;

  constructor(
    private readonly client: S3Client,
    private readonly settings: S3StoreSettings,
    private readonly index: CacheIndex,
    private readonly onCorrupt: CorruptEntryListener = () => {},
  ) {}

  private key(id: string): string {
    return `${this.settings.prefix}bitstreams/${id}`;
  }

  /** whether the server takes conditional writes (If-None-Match: *); those that answer 501 get HEAD, then PUT */
  private conditionalPut = true;

  async put(bitstream: Uint8Array, meta: StoredMeta): Promise<string> {
    const id = bitstreamId(bitstream);
    const write = (conditional: boolean) =>
      this.client.send(
        new PutObjectCommand({
          Bucket: this.settings.bucket,
          Key: this.key(id),
          Body: bitstream,
          ContentType: 'application/vnd.vlmpress',
          Metadata: { [META_FIELD]: Buffer.from(JSON.stringify(meta)).toString('base64url') },
          ...(conditional ? { IfNoneMatch: '*' } : {}),
        }),
      );
    // Content-addressed: an object under this id holds these bytes, so a second put keeps the first
    // (and its createdAt). A damaged one is found by the read that re-hashes it, which deletes it.
    if (this.conditionalPut) {
      try {
        await write(true);
        return id;
      } catch (e) {
        // 412: it exists; 409: another writer is putting it right now (the same bytes).
        if (status(e) === 412 || status(e) === 409) return id;
        if (status(e) !== 501) throw unavailable('bitstream write', e);
        this.conditionalPut = false;
      }
    }
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }));
      return id;
    } catch (e) {
      if (!isMissing(e)) throw unavailable('bitstream check', e);
    }
    try {
      await write(false);
    } catch (e) {
      throw unavailable('bitstream write', e);
    }
    return id;
  }

  async get(id: string): Promise<{ bitstream: Uint8Array; meta: StoredMeta } | null> {
    if (!ID_PATTERN.test(id)) return null;
    let data: Buffer;
    let metaField: string | undefined;
    try {
      const r = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) }));
      data = await bodyBytes(r.Body);
      metaField = r.Metadata?.[META_FIELD];
    } catch (e) {
      if (isMissing(e)) return null;
      throw unavailable('bitstream read', e);
    }
    const meta = metaField ? parseStoredMeta(Buffer.from(metaField, 'base64url')) : null;
    if (bitstreamId(data) !== id || !meta) {
      this.onCorrupt(bitstreamId(data) !== id ? 'bitstream' : 'meta');
      await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.key(id) })).catch(() => {});
      return null;
    }
    return { bitstream: new Uint8Array(data), meta };
  }

  lookup(cacheKey: string): Promise<string | null> {
    return this.index.lookup(cacheKey);
  }

  remember(cacheKey: string, id: string): Promise<void> {
    return this.index.remember(cacheKey, id);
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}

/** The S3 store, its bucket checked; the cache index in Redis when the gateway has one, else in the bucket. */
export async function openS3Store(
  settings: S3StoreSettings,
  redisIndex?: CacheIndex,
  onCorrupt: CorruptEntryListener = () => {},
): Promise<S3BitstreamStore> {
  const client = s3Client(settings);
  try {
    await checkBucket(client, settings);
  } catch (e) {
    client.destroy();
    throw e;
  }
  const index = redisIndex ?? new BucketCacheIndex(client, settings.bucket, settings.prefix, onCorrupt);
  return new S3BitstreamStore(client, settings, index, onCorrupt);
}
