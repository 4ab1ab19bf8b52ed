/**
 * The vlmpress codec: image -> VLMP bitstream -> image, over loaded model packages. What is common to
 * every codec kind lives here: packages, pixel and size limits, the byte-budget search, dispatch by
 * the kind an encode names and by the kind a container's codec byte says. Each kind's own coding is
 * its module in kinds/ (the table in kinds/table.ts lists them).
 */
import { Flags, QUALITY_ONE, parseContainer, quantiseQuality } from './container.js';
import { CodecError, stopPoint, type StopCheck } from './errors.js';
import { decodeImage, DEFAULT_MAX_PIXELS, encodeImage, type OutputFormat, type RgbImage } from './image-io.js';
import type { CodecTools, Decoded, KindContext, QualityScale } from './kinds/kind.js';
import type { CodecChoice } from './kinds/names.js';
import { CODEC_CHOICES, DEFAULT_CODEC, isCodecChoice, kindByCode, kindByName } from './kinds/table.js';
import type { EditorPackage } from './editor-package.js';
import type { LoadOptions, ModelPackage, SessionSettings } from './model-package.js';
import { BUNDLED_MODELS_DIR, findModelDirs, Packages } from './packages.js';
import { searchQualityForBudget } from './rate-control.js';

export interface CodecOptions {
  /** model package folders; default: every folder with a manifest.json under the bundled models/ */
  modelDirs?: string[];
  /** name or id of the model used for encoding; default: the first one loaded */
  defaultModel?: string;
  session?: Partial<SessionSettings>;
  /** pixel limit for input images */
  maxPixels?: number;
  /**
   * pixel limit for the size a bitstream announces (default: `maxPixels`). A gateway sets it to what
   * it produces itself: a few KB of bitstream can announce any size, and decoding costs time per pixel.
   */
  maxDecodePixels?: number;
  /** the learned decoder runs on tiles of at most this many latents a side (memory bound); default 48 */
  decodeTileLatents?: number;
  /** the avifenc command for avif-screen (default: avifenc on the PATH) */
  avifenc?: string;
  log?: LoadOptions['log'];
}

export interface EncodeOptions {
  /** a kind of the table (default: learned): what the policy picked for this content */
  codec?: CodecChoice;
  /** on the kind's own scale (kinds/): learned 1..levels in 1/256 steps, the file kinds integers 1..100;
   * default: the scale's default */
  quality?: number;
  /** the highest quality (up to `quality` when given) whose bitstream fits in this many bytes */
  maxBytes?: number;
  /** model name or id (for semantic AVIF: the editor package's); default: the first loaded */
  model?: string;
  /** asked at the safe points (before each probe, between stages): true stops the encode there */
  stop?: StopCheck;
}

export interface DecodeOptions {
  /** asked at the safe points (between decoder tiles and stages): true stops the decode there */
  stop?: StopCheck;
}

export interface EncodeResult {
  bitstream: Uint8Array;
  bytes: number;
  /** bits per pixel of the whole container (header and checksum included) */
  bpp: number;
  /** the quality actually used (what the bitstream stores) */
  quality: number;
  width: number;
  height: number;
  model: { name: string; id: string };
  /** encoder runs spent (1 without a byte budget) */
  probes: number;
  provider: string;
}

export interface BitstreamInfo {
  version: number;
  codec: string;
  model: { idPrefix: string; name: string | null; id: string | null };
  quality: number;
  width: number;
  height: number;
  bytes: number;
  bpp: number;
  sections: { hyper: number; latent: number };
  flags: { alphaFlattened: boolean; restoration: boolean };
}

export class Codec {
  private readonly packages: Packages;

  private constructor(
    readonly maxPixels: number,
    private readonly ctx: KindContext,
  ) {
    this.packages = ctx.packages;
  }

  get maxDecodePixels(): number {
    return this.ctx.maxDecodePixels;
  }

  static async load(options: CodecOptions = {}): Promise<Codec> {
    const dirs = options.modelDirs ?? (await findModelDirs(BUNDLED_MODELS_DIR, 'all'));
    if (dirs.length === 0) throw new CodecError('bad_model_package', `no model package found (looked in ${BUNDLED_MODELS_DIR})`);
    const tileLatents = options.decodeTileLatents ?? 48;
    if (!Number.isSafeInteger(tileLatents) || tileLatents < 1)
      throw new CodecError('invalid_argument', 'decodeTileLatents must be a positive integer');
    const loadOptions: LoadOptions = {};
    if (options.session) loadOptions.settings = options.session;
    if (options.log) loadOptions.log = options.log;
    const packages = await Packages.load(dirs, loadOptions, options.defaultModel);
    const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
    const tools: CodecTools = options.avifenc ? { avifenc: options.avifenc } : {};
    return new Codec(maxPixels, { packages, maxDecodePixels: options.maxDecodePixels ?? maxPixels, tileLatents, tools });
  }

  async close(): Promise<void> {
    await this.packages.release();
  }

  /** The loaded editor packages (semantic AVIF), by name and id. */
  get editorInfo(): { name: string; id: string; provider: string; graphs: string[] }[] {
    return this.packages.editors.map((e) => ({
      name: e.manifest.name,
      id: e.manifest.id,
      provider: e.provider,
      graphs: Object.keys(e.manifest.graphs),
    }));
  }

  /** An editor package by name, full id or id prefix; when none is named, the current one. */
  editor(nameOrId?: string): EditorPackage {
    return this.packages.editor(nameOrId);
  }

  get modelInfo(): { name: string; id: string; provider: string; levels: number; defaultQuality: number }[] {
    return this.packages.models.map((m) => ({
      name: m.manifest.name,
      id: m.manifest.id,
      provider: m.provider,
      levels: m.manifest.quality.levels,
      defaultQuality: m.manifest.quality.default,
    }));
  }

  get defaultModel(): { name: string; id: string } {
    const { name, id } = this.packages.defaultModel.manifest;
    return { name, id };
  }

  /** A loaded model by name, full id or id prefix. */
  model(nameOrId: string): ModelPackage {
    return this.packages.model(nameOrId);
  }

  /** Decode an image file (any supported format) and encode it. */
  async encodeFile(
    input: Uint8Array,
    options: EncodeOptions = {},
  ): Promise<EncodeResult & { source: { format: string; width: number; height: number; bytes: number } }> {
    const img = await decodeImage(input, this.maxPixels);
    const result = await this.encodePixels(img, options, img.hadAlpha ? Flags.AlphaFlattened : 0);
    return { ...result, source: { format: img.format, width: img.width, height: img.height, bytes: input.length } };
  }

  async encodePixels(img: RgbImage, options: EncodeOptions = {}, flags = 0): Promise<EncodeResult> {
    const name = options.codec ?? DEFAULT_CODEC;
    if (!isCodecChoice(name)) throw new CodecError('invalid_argument', `codec must be ${CODEC_CHOICES.join(', ')}`, { codec: name });
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3)
      throw new CodecError('invalid_argument', 'pixels must be packed RGB of width x height x 3 bytes');
    if (img.width * img.height > this.maxPixels)
      throw new CodecError('image_too_large', `the image has ${img.width * img.height} pixels, the limit is ${this.maxPixels}`);
    const { stop, maxBytes } = options;
    const encoder = kindByName(name).encoder(this.ctx, img, { model: options.model, flags, stop });
    const { scale } = encoder;
    const quality = options.quality ?? (maxBytes === undefined ? scale.default : scale.budgetStart);
    checkQuality(name, scale, quality);
    if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1))
      throw new CodecError('invalid_argument', 'maxBytes must be a positive integer', { maxBytes });
    const at = async (qualityFixed: number) => {
      stopPoint(stop);
      const bitstream = await encoder.at(qualityFixed);
      return { qualityFixed, bytes: bitstream.length, bitstream };
    };
    const top = quantiseQuality(quality);
    const { best, probes } =
      maxBytes === undefined
        ? { best: await at(top), probes: 1 }
        : await searchQualityForBudget(at, quantiseQuality(scale.min), top, maxBytes, { step: scale.budgetStep, logSlope: scale.logSlope });
    return {
      bitstream: best.bitstream,
      bytes: best.bytes,
      bpp: (8 * best.bytes) / (img.width * img.height),
      quality: best.qualityFixed / QUALITY_ONE,
      width: img.width,
      height: img.height,
      model: encoder.model,
      probes,
      provider: encoder.provider,
    };
  }

  /** Validate a bitstream's framing and name its kind and package (no decoding). */
  inspect(bitstream: Uint8Array): BitstreamInfo {
    const c = parseContainer(bitstream);
    const kind = kindByCode(c.codec);
    const pkg = kind.package && this.packages.byPrefix(kind.package, c.modelIdPrefix);
    return {
      version: c.version,
      codec: kind.label ?? kind.name,
      model: { idPrefix: c.modelIdPrefix, name: pkg?.manifest.name ?? null, id: pkg?.manifest.id ?? null },
      quality: c.qualityFixed / QUALITY_ONE,
      width: c.width,
      height: c.height,
      bytes: c.byteLength,
      bpp: (8 * c.byteLength) / (c.width * c.height),
      sections: { hyper: c.hyper.length, latent: c.latent.length },
      flags: { alphaFlattened: (c.flags & Flags.AlphaFlattened) !== 0, restoration: (c.flags & Flags.Restoration) !== 0 },
    };
  }

  async decode(bitstream: Uint8Array, options: DecodeOptions = {}): Promise<Decoded> {
    stopPoint(options.stop);
    const c = parseContainer(bitstream);
    // Refuse before any allocation: the size a bitstream announces is the cost of decoding it.
    const limit = this.ctx.maxDecodePixels;
    if (c.width * c.height > limit)
      throw new CodecError('image_too_large', `the bitstream announces ${c.width}x${c.height} pixels, the decode limit is ${limit}`, {
        width: c.width,
        height: c.height,
        maxDecodePixels: limit,
      });
    return kindByCode(c.codec).decode(this.ctx, c, options.stop);
  }

  async decodeToFile(bitstream: Uint8Array, format: OutputFormat, quality?: number): Promise<Buffer> {
    const img = await this.decode(bitstream);
    return encodeImage(img, format, quality === undefined ? {} : { quality });
  }
}

/** A quality on the kind's scale, or a clear error naming the scale. */
function checkQuality(name: CodecChoice, scale: QualityScale, quality: number): void {
  const ok = typeof quality === 'number' && Number.isFinite(quality) && quality >= scale.min && quality <= scale.max;
  if (scale.integer && !(ok && Number.isInteger(quality)))
    throw new CodecError('invalid_argument', `${name} quality must be an integer from ${scale.min} to ${scale.max}`, { quality });
  if (!ok) throw new CodecError('invalid_argument', `quality must be a number from ${scale.min} to ${scale.max}`, { quality });
}
