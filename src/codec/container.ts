/**
 * The VLMP bitstream container, version 1 (specified in docs/bitstream-format.md).
 *
 *   magic "VLMP" | version u8 | codec u8 | flags u8 | model id 8 bytes | quality u16 (8.8 fixed point)
 *   | width LEB128 | height LEB128 | hyper section length LEB128 | latent section length LEB128
 *   | hyper section | latent section | CRC-32C u32 of every preceding byte
 *
 * Multi-byte fixed fields are big-endian. Parsing checks, in this order: magic, version, header
 * completeness, total length, checksum, then the meaning of the fields, so a damaged stream reports
 * `truncated` or `corrupt_payload` before any field is trusted.
 */
import { crc32c } from './crc32c.js';
import { CodecError } from './errors.js';

export const MAGIC = Uint8Array.from([0x56, 0x4c, 0x4d, 0x50]); // "VLMP"
export const CONTAINER_VERSION = 1;
export const MODEL_ID_BYTES = 8;
export const QUALITY_ONE = 256; // 8.8 fixed point
/** Classical bitstreams carry no model: eight zero bytes stand in the model id field. */
export const NO_MODEL = '0'.repeat(2 * MODEL_ID_BYTES);

export enum CodecKind {
  /** the learned codec of a vlmpress model package */
  Learned = 0,
  /** classical codecs the policy may pick where they measure cheaper (the latent section is the file) */
  Avif = 1,
  Webp = 2,
  Jpeg = 3,
  /** AVIF made around an editor package (pre-editor before the encoder, restoration after the
   * decoder); the model id names the package, the latent section is the AVIF file */
  SemanticAvif = 4,
  /** AVIF made with libaom's screen-content tools (avifenc); the latent section is the AVIF file */
  AvifScreen = 5,
}

export const Flags = {
  /** the source image had an alpha channel, flattened onto white before encoding */
  AlphaFlattened: 1 << 0,
  /** semantic AVIF only: the decoded AVIF goes through the package's restoration network; without
   * it the AVIF file is the reconstruction itself and decodes without the package */
  Restoration: 1 << 1,
} as const;
const KNOWN_FLAGS = Flags.AlphaFlattened | Flags.Restoration;

export interface ContainerHeader {
  version: number;
  codec: CodecKind;
  flags: number;
  /** hex of the first 8 bytes of the model id (the model's SHA-256 content hash) */
  modelIdPrefix: string;
  /** quality in 8.8 fixed point: the decoder feeds exactly qualityFixed / 256 to the graphs */
  qualityFixed: number;
  width: number;
  height: number;
}

export interface Container extends ContainerHeader {
  hyper: Uint8Array;
  latent: Uint8Array;
  /** bytes of the whole container */
  byteLength: number;
}

const MAX_DIMENSION = 2 ** 24;

export function writeLeb128(out: number[], value: number): void {
  let v = value;
  do {
    let byte = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) byte |= 0x80;
    out.push(byte);
  } while (v > 0);
}

export function quantiseQuality(quality: number): number {
  return Math.round(quality * QUALITY_ONE);
}

export function serialiseContainer(c: ContainerHeader & { hyper: Uint8Array; latent: Uint8Array }): Uint8Array {
  if (c.modelIdPrefix.length !== 2 * MODEL_ID_BYTES || !/^[0-9a-f]+$/.test(c.modelIdPrefix)) {
    throw new CodecError('invalid_argument', `model id prefix must be ${2 * MODEL_ID_BYTES} lowercase hex digits`);
  }
  const head: number[] = [...MAGIC, CONTAINER_VERSION, c.codec, c.flags];
  for (let i = 0; i < MODEL_ID_BYTES; i++) head.push(parseInt(c.modelIdPrefix.slice(2 * i, 2 * i + 2), 16));
  head.push((c.qualityFixed >>> 8) & 0xff, c.qualityFixed & 0xff);
  writeLeb128(head, c.width);
  writeLeb128(head, c.height);
  writeLeb128(head, c.hyper.length);
  writeLeb128(head, c.latent.length);
  const total = head.length + c.hyper.length + c.latent.length + 4;
  const out = new Uint8Array(total);
  out.set(head, 0);
  out.set(c.hyper, head.length);
  out.set(c.latent, head.length + c.hyper.length);
  const crc = crc32c(out, 0, total - 4);
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(total - 4, crc, false);
  return out;
}

class Cursor {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  u8(): number {
    if (this.pos >= this.buf.length) throw new CodecError('truncated', 'bitstream ends inside its header');
    return this.buf[this.pos++]!;
  }

  leb128(what: string): number {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.u8();
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return value;
    }
    throw new CodecError('bad_header', `${what} is not a valid LEB128 number`);
  }
}

export function looksLikeContainer(buf: Uint8Array): boolean {
  return buf.length >= MAGIC.length && MAGIC.every((b, i) => buf[i] === b);
}

/** Parse and validate the framing of a bitstream. Field meanings (model, quality range) are checked by the caller. */
export function parseContainer(buf: Uint8Array): Container {
  const n = Math.min(buf.length, MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (buf[i] !== MAGIC[i]) throw new CodecError('bad_magic', 'not a vlmpress bitstream (magic "VLMP" missing)');
  }
  if (buf.length < MAGIC.length) throw new CodecError('truncated', `bitstream is ${buf.length} bytes, shorter than its magic`);
  const cur = new Cursor(buf);
  cur.pos = MAGIC.length;
  const version = cur.u8();
  if (version !== CONTAINER_VERSION) {
    throw new CodecError(
      'unsupported_version',
      `bitstream version ${version} is not supported (this build reads version ${CONTAINER_VERSION})`,
      { version },
    );
  }
  const codec = cur.u8();
  const flags = cur.u8();
  let modelIdPrefix = '';
  for (let i = 0; i < MODEL_ID_BYTES; i++) modelIdPrefix += cur.u8().toString(16).padStart(2, '0');
  const qualityFixed = cur.u8() * 256 + cur.u8();
  const width = cur.leb128('width');
  const height = cur.leb128('height');
  const hyperLength = cur.leb128('hyper section length');
  const latentLength = cur.leb128('latent section length');
  const expected = cur.pos + hyperLength + latentLength + 4;
  if (buf.length < expected) {
    throw new CodecError('truncated', `bitstream is ${buf.length} bytes, its header announces ${expected}`, {
      expected,
      actual: buf.length,
    });
  }
  if (buf.length > expected) {
    throw new CodecError('corrupt_payload', `bitstream has ${buf.length - expected} bytes after its checksum`, {
      expected,
      actual: buf.length,
    });
  }
  const stored = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(expected - 4, false);
  if (crc32c(buf, 0, expected - 4) !== stored) throw new CodecError('corrupt_payload', 'bitstream checksum (CRC-32C) does not match');

  if (!(codec in CodecKind)) throw new CodecError('unsupported_codec', `codec ${codec} is not supported by this build`, { codec });
  if (codec !== CodecKind.Learned && hyperLength !== 0)
    throw new CodecError('bad_header', `a classical-codec bitstream has no hyper section (found ${hyperLength} bytes)`);
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new CodecError('unsupported_feature', `unknown flags 0x${flags.toString(16)}`, { flags });
  if (flags & Flags.Restoration && codec !== CodecKind.SemanticAvif)
    throw new CodecError('bad_header', 'the restoration flag is only valid on semantic AVIF bitstreams');
  if (width < 1 || height < 1 || width > MAX_DIMENSION || height > MAX_DIMENSION) {
    throw new CodecError('bad_header', `image size ${width}x${height} is out of range`);
  }
  const hyperStart = cur.pos;
  return {
    version,
    codec,
    flags,
    modelIdPrefix,
    qualityFixed,
    width,
    height,
    hyper: buf.subarray(hyperStart, hyperStart + hyperLength),
    latent: buf.subarray(hyperStart + hyperLength, expected - 4),
    byteLength: expected,
  };
}
