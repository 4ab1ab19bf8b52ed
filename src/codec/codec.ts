/**
 * The vlmpress codec: image -> VLMP bitstream -> image, over one or more loaded model packages.
 * Encoding and decoding follow docs/model-format.md step by step; the entropy decoder depends only on
 * integers (decoded hyper-latents and the integer entropy graph), which is why a bitstream decodes
 * identically everywhere.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { CodecKind, Flags, QUALITY_ONE, parseContainer, quantiseQuality, serialiseContainer, type Container } from './container.js';
import {
  CLASSICAL_CODECS,
  checkClassicalQuality,
  classicalName,
  decodeClassical,
  encodeClassical,
  encodeClassicalWithin,
  type ClassicalCodec,
  type ClassicalTools,
} from './classical.js';
import {
  currentFirst,
  isEditorManifest,
  loadEditorPackage,
  parseEditorManifest,
  releaseEditorPackage,
  runEditorGraph,
  runRestoration,
  type EditorPackage,
} from './editor-package.js';
import { CodecError, stopPoint, type StopCheck } from './errors.js';
import { decodeImage, DEFAULT_MAX_PIXELS, encodeImage, type OutputFormat, type RgbImage } from './image-io.js';
import {
  loadModelPackage,
  parseManifest,
  readManifestJson,
  releaseModelPackage,
  type LoadOptions,
  type ModelPackage,
  type SessionSettings,
} from './model-package.js';
import { cropChannels, fromTensor, paddedSize, roundHalfEven, toPaddedTensor } from './pixels.js';
import { MAX_SYMBOL_MAGNITUDE, RansReader, RansWriter } from './rans.js';
import { searchQualityForBudget } from './rate-control.js';

/** The project root: the nearest folder above this module with the package.json (from src/ or dist/src/). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** models/ of this installation (the shipped packages live in the project, never outside it). */
export const BUNDLED_MODELS_DIR = path.join(projectRoot(), 'models');

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

/** AVIF with an editor package's networks around it (pre-editor before, restoration after) */
export const SEMANTIC_AVIF = 'semantic-avif';
/** Every codec an encode may name: the learned codec, the classical ones, semantic AVIF. */
export type CodecChoice = 'learned' | ClassicalCodec | typeof SEMANTIC_AVIF;
export const CODEC_CHOICES: readonly CodecChoice[] = ['learned', ...CLASSICAL_CODECS, SEMANTIC_AVIF];

export interface EncodeOptions {
  /** `learned` (default), a classical codec or semantic AVIF: what the policy picked for this content */
  codec?: CodecChoice;
  /** learned: 1..levels, fractional values interpolate gains (stored in 1/256 steps); default: the
   * model's default. Classical and semantic AVIF: an integer 1..100 (default 75). */
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

interface PaddedInput {
  tensor: ort.Tensor;
  height: number;
  width: number;
  paddedHeight: number;
  paddedWidth: number;
}

/** Package folders under `root`: codec packages only (default), or editor packages too. */
export async function findModelDirs(root = BUNDLED_MODELS_DIR, kinds: 'codec' | 'all' = 'codec'): Promise<string[]> {
  const entries = await readdir(root).catch(() => [] as string[]);
  const dirs: string[] = [];
  for (const e of entries.sort()) {
    const dir = path.join(root, e);
    const isPackage = await stat(path.join(dir, 'manifest.json')).then(
      (s) => s.isFile(),
      () => false,
    );
    if (isPackage && (kinds === 'all' || !isEditorManifest(await readManifestJson(dir)))) dirs.push(dir);
  }
  return dirs;
}

/** The bundled models as the gateway describes them, from their manifests alone (no graphs loaded). */
export async function describeModels(dirs?: string[]): Promise<{ name: string; id: string; levels: number; defaultQuality: number }[]> {
  const found = dirs ?? (await findModelDirs());
  if (found.length === 0) throw new CodecError('bad_model_package', `no model package found (looked in ${BUNDLED_MODELS_DIR})`);
  const out = [];
  for (const dir of found) {
    const raw = await readManifestJson(dir);
    if (isEditorManifest(raw)) continue;
    const m = parseManifest(dir, raw);
    out.push({ name: m.name, id: m.id, levels: m.quality.levels, defaultQuality: m.quality.default });
  }
  return out;
}

/** What a client encoding for semantic AVIF must know of an editor package: its id and which networks it has. */
export interface EditorSummary {
  name: string;
  id: string;
  preeditor: boolean;
  restoration: boolean;
}

/** The bundled editor packages, in the order the codec loads them (the first is the default), from their manifests alone. */
export async function describeEditors(root = BUNDLED_MODELS_DIR): Promise<EditorSummary[]> {
  const manifests = [];
  for (const dir of await findModelDirs(root, 'all')) {
    const raw = await readManifestJson(dir);
    if (isEditorManifest(raw)) manifests.push(parseEditorManifest(dir, raw));
  }
  return currentFirst(manifests, (m) => m).map((m) => ({
    name: m.name,
    id: m.id,
    preeditor: m.graphs.preeditor !== undefined,
    restoration: m.graphs.restoration !== undefined,
  }));
}

/** Latents of context around a decoder tile: the synthesis transform (four 5x5 stride-2 transposed
 * convolutions) reaches two latents, so three make every tiled pixel equal to the whole-image one. */
const TILE_HALO = 3;

interface Limits {
  maxPixels: number;
  maxDecodePixels: number;
  tileLatents: number;
  tools: ClassicalTools;
}

export class Codec {
  private constructor(
    private readonly models: ModelPackage[],
    private readonly defaultPackage: ModelPackage,
    private readonly limits: Limits,
    private readonly editors: EditorPackage[],
  ) {}

  get maxPixels(): number {
    return this.limits.maxPixels;
  }

  get maxDecodePixels(): number {
    return this.limits.maxDecodePixels;
  }

  static async load(options: CodecOptions = {}): Promise<Codec> {
    const dirs = options.modelDirs ?? (await findModelDirs(BUNDLED_MODELS_DIR, 'all'));
    if (dirs.length === 0) throw new CodecError('bad_model_package', `no model package found (looked in ${BUNDLED_MODELS_DIR})`);
    const models: ModelPackage[] = [];
    const editors: EditorPackage[] = [];
    try {
      for (const dir of dirs) {
        const loadOptions: LoadOptions = {};
        if (options.session) loadOptions.settings = options.session;
        if (options.log) loadOptions.log = options.log;
        const raw = await readManifestJson(dir);
        if (isEditorManifest(raw)) editors.push(await loadEditorPackage(dir, raw, loadOptions));
        else models.push(await loadModelPackage(dir, loadOptions));
      }
      if (models.length === 0) throw new CodecError('bad_model_package', `no codec model package among ${dirs.join(', ')}`);
      const ids = [...models.map((m) => m.manifest.id), ...editors.map((e) => e.manifest.id)];
      if (new Set(ids.map((id) => id.slice(0, 16))).size !== ids.length)
        throw new CodecError('bad_model_package', 'two model packages share an id prefix');
      const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
      const tileLatents = options.decodeTileLatents ?? 48;
      if (!Number.isSafeInteger(tileLatents) || tileLatents < 1)
        throw new CodecError('invalid_argument', 'decodeTileLatents must be a positive integer');
      const limits = {
        maxPixels,
        maxDecodePixels: options.maxDecodePixels ?? maxPixels,
        tileLatents,
        tools: options.avifenc ? { avifenc: options.avifenc } : {},
      };
      const current = currentFirst(editors, (e) => e.manifest);
      const codec = new Codec(models, models[0]!, limits, current);
      const def = options.defaultModel ? codec.model(options.defaultModel) : models[0]!;
      return new Codec(models, def, limits, current);
    } catch (e) {
      await Promise.all([...models.map(releaseModelPackage), ...editors.map(releaseEditorPackage)]);
      throw e;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.map(releaseModelPackage), ...this.editors.map(releaseEditorPackage)]);
  }

  /** The loaded editor packages (semantic AVIF), by name and id. */
  get editorInfo(): { name: string; id: string; provider: string; graphs: string[] }[] {
    return this.editors.map((e) => ({
      name: e.manifest.name,
      id: e.manifest.id,
      provider: e.provider,
      graphs: Object.keys(e.manifest.graphs),
    }));
  }

  /** An editor package by name, full id or id prefix; when none is named, the first loaded that no
   * other loaded package supersedes. */
  editor(nameOrId?: string): EditorPackage {
    const e =
      nameOrId === undefined
        ? this.editors[0]
        : this.editors.find(
            (p) =>
              p.manifest.name === nameOrId || p.manifest.id === nameOrId || (nameOrId.length >= 16 && p.manifest.id.startsWith(nameOrId)),
          );
    if (!e)
      throw new CodecError(
        'unknown_model',
        nameOrId === undefined
          ? 'semantic AVIF needs an editor package and none is loaded'
          : `editor package "${nameOrId}" is not loaded (loaded: ${this.editors.map((p) => p.manifest.name).join(', ') || 'none'})`,
      );
    return e;
  }

  get modelInfo(): { name: string; id: string; provider: string; levels: number; defaultQuality: number }[] {
    return this.models.map((m) => ({
      name: m.manifest.name,
      id: m.manifest.id,
      provider: m.provider,
      levels: m.manifest.quality.levels,
      defaultQuality: m.manifest.quality.default,
    }));
  }

  get defaultModel(): { name: string; id: string } {
    return { name: this.defaultPackage.manifest.name, id: this.defaultPackage.manifest.id };
  }

  /** A loaded model by name, full id or id prefix. */
  model(nameOrId: string): ModelPackage {
    const m = this.models.find(
      (p) => p.manifest.name === nameOrId || p.manifest.id === nameOrId || (nameOrId.length >= 16 && p.manifest.id.startsWith(nameOrId)),
    );
    if (!m)
      throw new CodecError(
        'unknown_model',
        `model "${nameOrId}" is not loaded (loaded: ${this.models.map((p) => p.manifest.name).join(', ')})`,
      );
    return m;
  }

  // -- encoding ---------------------------------------------------------------------------------

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
    if (options.codec && options.codec !== 'learned') return this.encodeClassicalPixels(img, options.codec, options, flags);
    const pkg = options.model ? this.model(options.model) : this.defaultPackage;
    const { levels } = pkg.manifest.quality;
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) {
      throw new CodecError('invalid_argument', 'pixels must be packed RGB of width x height x 3 bytes');
    }
    if (img.width * img.height > this.maxPixels) {
      throw new CodecError('image_too_large', `the image has ${img.width * img.height} pixels, the limit is ${this.maxPixels}`);
    }
    const quality = options.quality ?? (options.maxBytes === undefined ? pkg.manifest.quality.default : levels);
    if (typeof quality !== 'number' || !Number.isFinite(quality) || quality < 1 || quality > levels) {
      throw new CodecError('invalid_argument', `quality must be a number from 1 to ${levels}`, { quality });
    }
    if (options.maxBytes !== undefined && (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1)) {
      throw new CodecError('invalid_argument', 'maxBytes must be a positive integer', { maxBytes: options.maxBytes });
    }
    const padded = this.pad(pkg, img);
    const at = async (qualityFixed: number) => {
      stopPoint(options.stop);
      const bitstream = await this.encodeAt(pkg, padded, qualityFixed, flags);
      return { qualityFixed, bytes: bitstream.length, bitstream };
    };
    const qFixed = quantiseQuality(quality);
    let chosen: { qualityFixed: number; bitstream: Uint8Array };
    let probes = 1;
    if (options.maxBytes === undefined) {
      chosen = await at(qFixed);
    } else {
      const r = await searchQualityForBudget(at, QUALITY_ONE, qFixed, options.maxBytes);
      chosen = r.best;
      probes = r.probes;
    }
    const bytes = chosen.bitstream.length;
    return {
      bitstream: chosen.bitstream,
      bytes,
      bpp: (8 * bytes) / (img.width * img.height),
      quality: chosen.qualityFixed / QUALITY_ONE,
      width: img.width,
      height: img.height,
      model: { name: pkg.manifest.name, id: pkg.manifest.id },
      probes,
      provider: pkg.provider,
    };
  }

  /** Classical codecs and semantic AVIF: sharp's encoder, for semantic AVIF after the package's pre-editor. */
  private async encodeClassicalPixels(
    img: RgbImage,
    codec: Exclude<CodecChoice, 'learned'>,
    options: EncodeOptions,
    flags: number,
  ): Promise<EncodeResult> {
    if (!CODEC_CHOICES.includes(codec)) throw new CodecError('invalid_argument', `codec must be ${CODEC_CHOICES.join(', ')}`, { codec });
    if (img.width < 1 || img.height < 1 || img.data.length !== img.width * img.height * 3) {
      throw new CodecError('invalid_argument', 'pixels must be packed RGB of width x height x 3 bytes');
    }
    if (img.width * img.height > this.maxPixels)
      throw new CodecError('image_too_large', `the image has ${img.width * img.height} pixels, the limit is ${this.maxPixels}`);
    const quality = options.quality ?? 75;
    checkClassicalQuality(codec, quality);
    let at: (q: number) => Promise<Uint8Array>;
    let model = { name: codec as string, id: '' };
    let provider = 'cpu';
    if (codec === SEMANTIC_AVIF) {
      const pkg = this.editor(options.model);
      const wrap = { kind: CodecKind.SemanticAvif, modelIdPrefix: pkg.manifest.id.slice(0, 16) };
      const semanticFlags = flags | (pkg.restoration ? Flags.Restoration : 0);
      // The edit is made for the quality it will be coded at, so each probe of a byte budget edits anew.
      at = async (q) => {
        stopPoint(options.stop);
        const edited = pkg.preeditor ? await runEditorGraph(pkg.preeditor, img, q) : img;
        stopPoint(options.stop);
        return encodeClassical(edited, 'avif', q, semanticFlags, wrap);
      };
      model = { name: pkg.manifest.name, id: pkg.manifest.id };
      provider = pkg.provider;
    } else {
      at = (q) => {
        stopPoint(options.stop);
        return encodeClassical(img, codec, q, flags, undefined, this.limits.tools);
      };
    }
    let bitstream: Uint8Array;
    let used = quality;
    let probes = 1;
    if (options.maxBytes === undefined) {
      bitstream = await at(quality);
    } else {
      if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1)
        throw new CodecError('invalid_argument', 'maxBytes must be a positive integer', { maxBytes: options.maxBytes });
      ({ bitstream, quality: used, probes } = await encodeClassicalWithin(at, codec, quality, options.maxBytes));
    }
    return {
      bitstream,
      bytes: bitstream.length,
      bpp: (8 * bitstream.length) / (img.width * img.height),
      quality: used,
      width: img.width,
      height: img.height,
      model,
      probes,
      provider,
    };
  }

  private pad(pkg: ModelPackage, img: RgbImage): PaddedInput {
    const t = toPaddedTensor(img, pkg.manifest.paddingMultiple);
    return {
      tensor: new ort.Tensor('float32', t.data, [1, 3, t.height, t.width]),
      height: img.height,
      width: img.width,
      paddedHeight: t.height,
      paddedWidth: t.width,
    };
  }

  private async entropyParameters(pkg: ModelPackage, zHat: Int32Array, zh: number, zw: number, yh: number, yw: number) {
    const M = pkg.manifest.latentChannels;
    const out = await pkg.entropy.run({ z_hat: new ort.Tensor('int32', zHat, [1, pkg.manifest.hyperChannels, zh, zw]) });
    const up = pkg.manifest.upsample;
    const meanQ = cropChannels(out['mean_q']!.data as Int32Array, M, up * zh, up * zw, yh, yw);
    const scaleIndex = cropChannels(out['scale_index']!.data as Int32Array, M, up * zh, up * zw, yh, yw);
    return { meanQ, scaleIndex };
  }

  private async encodeAt(pkg: ModelPackage, input: PaddedInput, qualityFixed: number, flags: number): Promise<Uint8Array> {
    const m = pkg.manifest;
    const enc = await pkg.encoder.run({
      image: input.tensor,
      quality: new ort.Tensor('float32', Float32Array.of(qualityFixed / QUALITY_ONE), [1]),
    });
    const y = enc['y']!.data as Float32Array;
    const zHat = enc['z_hat']!.data as Int32Array;
    const yh = input.paddedHeight / m.latentStride;
    const yw = input.paddedWidth / m.latentStride;
    const zh = Math.ceil(yh / m.upsample);
    const zw = Math.ceil(yw / m.upsample);
    const { meanQ, scaleIndex } = await this.entropyParameters(pkg, zHat, zh, zw, yh, yw);

    const hyper = new RansWriter(zHat.length);
    const zPlane = zh * zw;
    for (let c = 0; c < m.hyperChannels; c++) {
      const table = pkg.tables.hyper[c]!;
      for (let i = 0; i < zPlane; i++) hyper.putValue(table, zHat[c * zPlane + i]!);
    }
    const latent = new RansWriter(y.length);
    const denom = m.meanDenominator;
    for (let i = 0; i < y.length; i++) {
      let k = roundHalfEven(Math.fround(y[i]! - meanQ[i]! / denom));
      if (k > MAX_SYMBOL_MAGNITUDE) k = MAX_SYMBOL_MAGNITUDE;
      else if (k < -MAX_SYMBOL_MAGNITUDE) k = -MAX_SYMBOL_MAGNITUDE;
      latent.putValue(pkg.tables.gaussian[scaleIndex[i]!]!, k);
    }
    return serialiseContainer({
      version: 1,
      codec: CodecKind.Learned,
      flags,
      modelIdPrefix: m.id.slice(0, 16),
      qualityFixed,
      width: input.width,
      height: input.height,
      hyper: hyper.finish(),
      latent: latent.finish(),
    });
  }

  // -- decoding ---------------------------------------------------------------------------------

  /** Validate a bitstream's framing and name its model (no decoding). */
  inspect(bitstream: Uint8Array): BitstreamInfo {
    const c = parseContainer(bitstream);
    const classical = classicalName(c.codec);
    const semantic = c.codec === CodecKind.SemanticAvif;
    const pkg = classical
      ? undefined
      : (semantic ? this.editors : this.models).find((p) => p.manifest.id.startsWith(c.modelIdPrefix))?.manifest;
    return {
      version: c.version,
      codec: classical ?? (semantic ? SEMANTIC_AVIF : 'vlmpress-learned'),
      model: { idPrefix: c.modelIdPrefix, name: pkg?.name ?? null, id: pkg?.id ?? null },
      quality: c.qualityFixed / QUALITY_ONE,
      width: c.width,
      height: c.height,
      bytes: c.byteLength,
      bpp: (8 * c.byteLength) / (c.width * c.height),
      sections: { hyper: c.hyper.length, latent: c.latent.length },
      flags: { alphaFlattened: (c.flags & Flags.AlphaFlattened) !== 0, restoration: (c.flags & Flags.Restoration) !== 0 },
    };
  }

  private resolveContainer(c: Container): { c: Container; pkg: ModelPackage } {
    const pkg = this.models.find((p) => p.manifest.id.startsWith(c.modelIdPrefix));
    if (!pkg)
      throw new CodecError('unknown_model', `the bitstream was made by model ${c.modelIdPrefix}…, which is not loaded`, {
        modelIdPrefix: c.modelIdPrefix,
      });
    const { levels } = pkg.manifest.quality;
    if (c.qualityFixed < QUALITY_ONE || c.qualityFixed > levels * QUALITY_ONE) {
      throw new CodecError('bad_header', `quality ${c.qualityFixed / QUALITY_ONE} is outside 1..${levels}`);
    }
    this.checkAnnouncedSize(c);
    return { c, pkg };
  }

  /** Refuse before any allocation: the size a bitstream announces is the cost of decoding it. */
  private checkAnnouncedSize(c: Container): void {
    const limit = this.limits.maxDecodePixels;
    if (c.width * c.height > limit) {
      throw new CodecError('image_too_large', `the bitstream announces ${c.width}x${c.height} pixels, the decode limit is ${limit}`, {
        width: c.width,
        height: c.height,
        maxDecodePixels: limit,
      });
    }
  }

  async decode(
    bitstream: Uint8Array,
    options: DecodeOptions = {},
  ): Promise<RgbImage & { quality: number; model: { name: string; id: string } }> {
    const { stop } = options;
    stopPoint(stop);
    const parsed = parseContainer(bitstream);
    const classical = classicalName(parsed.codec);
    if (classical) {
      this.checkAnnouncedSize(parsed);
      return { ...(await decodeClassical(parsed, this.limits.maxDecodePixels)), model: { name: classical, id: '' } };
    }
    if (parsed.codec === CodecKind.SemanticAvif) return this.decodeSemantic(parsed, stop);
    const { c, pkg } = this.resolveContainer(parsed);
    const m = pkg.manifest;
    const H = paddedSize(c.height, m.paddingMultiple);
    const W = paddedSize(c.width, m.paddingMultiple);
    const yh = H / m.latentStride;
    const yw = W / m.latentStride;
    const zh = Math.ceil(yh / m.upsample);
    const zw = Math.ceil(yw / m.upsample);

    const zHat = new Int32Array(m.hyperChannels * zh * zw);
    const hyper = new RansReader(c.hyper);
    const zPlane = zh * zw;
    for (let ch = 0; ch < m.hyperChannels; ch++) {
      const table = pkg.tables.hyper[ch]!;
      for (let i = 0; i < zPlane; i++) {
        const v = hyper.getValue(table);
        if (v > m.hyperClip || v < -m.hyperClip) throw new CodecError('corrupt_payload', 'hyper-latent value outside the clip range');
        zHat[ch * zPlane + i] = v;
      }
    }
    hyper.assertFinished();

    stopPoint(stop);
    const { meanQ, scaleIndex } = await this.entropyParameters(pkg, zHat, zh, zw, yh, yw);
    const yHat = new Float32Array(m.latentChannels * yh * yw);
    const latent = new RansReader(c.latent);
    const denom = m.meanDenominator;
    for (let i = 0; i < yHat.length; i++) {
      const table = pkg.tables.gaussian[scaleIndex[i]!];
      if (!table) throw new Error(`entropy graph produced scale index ${scaleIndex[i]} outside the tables`);
      yHat[i] = latent.getValue(table) + meanQ[i]! / denom;
    }
    latent.assertFinished();

    stopPoint(stop);
    const img = await this.synthesize(pkg, yHat, yh, yw, c, stop);
    return { ...img, quality: c.qualityFixed / QUALITY_ONE, model: { name: m.name, id: m.id } };
  }

  /**
   * Semantic AVIF: the AVIF file decodes on its own; with the restoration flag the package's
   * restoration network then runs on it, so the package must be loaded (`unknown_model` otherwise).
   */
  private async decodeSemantic(
    c: Container,
    stop: StopCheck | undefined,
  ): Promise<RgbImage & { quality: number; model: { name: string; id: string } }> {
    this.checkAnnouncedSize(c);
    const restore = (c.flags & Flags.Restoration) !== 0;
    const pkg = this.editors.find((p) => p.manifest.id.startsWith(c.modelIdPrefix));
    if (restore && !pkg)
      throw new CodecError('unknown_model', `the bitstream was made with editor package ${c.modelIdPrefix}…, which is not loaded`, {
        modelIdPrefix: c.modelIdPrefix,
      });
    if (restore && !pkg!.restoration)
      throw new CodecError('bad_model_package', `editor package ${pkg!.manifest.name} has no restoration network`);
    const decoded = await decodeClassical(c, this.limits.maxDecodePixels);
    const img = restore ? await runRestoration(pkg!.restoration!, decoded, decoded.quality, stop) : decoded;
    const model = pkg ? { name: pkg.manifest.name, id: pkg.manifest.id } : { name: SEMANTIC_AVIF, id: '' };
    return { data: img.data, width: img.width, height: img.height, quality: decoded.quality, model };
  }

  /**
   * The synthesis transform, tile by tile: each tile of at most `tileLatents`² latents runs with
   * TILE_HALO latents of context on every inner side, and only its own pixels are kept. The decoder's
   * working memory (about 0.46 GB per megapixel in one run) is then bounded by the tile, not the
   * image, and the pixels equal those of one whole-image run (test/codec/tiled-decode.test.ts).
   */
  private async synthesize(
    pkg: ModelPackage,
    yHat: Float32Array,
    yh: number,
    yw: number,
    c: Container,
    stop: StopCheck | undefined,
  ): Promise<RgbImage> {
    const M = pkg.manifest.latentChannels;
    const s = pkg.manifest.latentStride;
    const T = this.limits.tileLatents;
    const quality = new ort.Tensor('float32', Float32Array.of(c.qualityFixed / QUALITY_ONE), [1]);
    if (yh <= T && yw <= T) {
      const out = await pkg.decoder.run({ y_hat: new ort.Tensor('float32', yHat, [1, M, yh, yw]), quality });
      return fromTensor(out['image']!.data as Float32Array, s * yh, s * yw, c.width, c.height);
    }
    const rgb = new Uint8Array(c.width * c.height * 3);
    for (let ty = 0; ty < yh; ty += T) {
      for (let tx = 0; tx < yw; tx += T) {
        // Between tiles: an unwanted decode gives its thread back within one tile's time.
        stopPoint(stop);
        const y0 = Math.max(0, ty - TILE_HALO);
        const y1 = Math.min(yh, ty + T + TILE_HALO);
        const x0 = Math.max(0, tx - TILE_HALO);
        const x1 = Math.min(yw, tx + T + TILE_HALO);
        const th = y1 - y0;
        const tw = x1 - x0;
        const tile = new Float32Array(M * th * tw);
        for (let ch = 0; ch < M; ch++) {
          for (let y = 0; y < th; y++) {
            const from = (ch * yh + y0 + y) * yw + x0;
            tile.set(yHat.subarray(from, from + tw), (ch * th + y) * tw);
          }
        }
        const out = await pkg.decoder.run({ y_hat: new ort.Tensor('float32', tile, [1, M, th, tw]), quality });
        const data = out['image']!.data as Float32Array;
        const plane = s * th * (s * tw);
        // This tile's own pixels, in image coordinates, clipped to the real (unpadded) size.
        const py1 = Math.min(c.height, s * Math.min(yh, ty + T));
        const px1 = Math.min(c.width, s * Math.min(yw, tx + T));
        for (let py = s * ty; py < py1; py++) {
          const rowIn = (py - s * y0) * (s * tw) - s * x0;
          for (let px = s * tx; px < px1; px++) {
            const si = rowIn + px;
            const d = (py * c.width + px) * 3;
            for (let k = 0; k < 3; k++) {
              const v = roundHalfEven(Math.fround(data[k * plane + si]! * 255));
              rgb[d + k] = v < 0 ? 0 : v > 255 ? 255 : v;
            }
          }
        }
      }
    }
    return { data: rgb, width: c.width, height: c.height };
  }

  async decodeToFile(bitstream: Uint8Array, format: OutputFormat, quality?: number): Promise<Buffer> {
    const img = await this.decode(bitstream);
    return encodeImage(img, format, quality === undefined ? {} : { quality });
  }
}
