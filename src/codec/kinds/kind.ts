/**
 * What every codec kind implements (one module per kind beside this file; the table in table.ts lists
 * them). A kind knows its container code, its quality scale and how to code one image at one quality;
 * the Codec does what is common to all of them: packages, pixel and size limits, the byte-budget
 * search, dispatch.
 */
import type { Container, CodecKind } from '../container.js';
import type { StopCheck } from '../errors.js';
import type { RgbImage } from '../image-io.js';
import type { Packages } from '../packages.js';
import type { CodecChoice, PayloadFormat } from './names.js';

export interface QualityScale {
  min: number;
  max: number;
  /** the quality of an encode that names none */
  default: number;
  /** where a byte-budget search starts when the encode names no quality */
  budgetStart: number;
  /** integer qualities only (the classical encoders' scales); otherwise steps of 1/256 */
  integer: boolean;
  /** the operating points the policy and shadowing step along, cheapest first: the settings the
   * evaluation harness measures the kind at, so every point has a measured curve behind it */
  ladder: readonly number[];
  /** grid step of the byte-budget search */
  budgetStep: number;
  /** d ln(bytes) / d quality, the budget search's first guess before it has measured the slope */
  logSlope: number;
}

/** A codec model package's quality levels (its manifest's `quality`). */
export interface ModelQuality {
  levels: number;
  default: number;
}

/** External tools a kind may run (from the gateway's configuration). */
export interface CodecTools {
  /** the avifenc command for avif-screen (default: avifenc on the PATH) */
  avifenc?: string;
}

/** What the Codec lends a kind: the loaded packages and the limits. */
export interface KindContext {
  packages: Packages;
  maxDecodePixels: number;
  /** the learned decoder runs on tiles of at most this many latents a side */
  tileLatents: number;
  tools: CodecTools;
}

/** One image made ready for encoding: its scale, and an encoder at any quality of it. */
export interface KindEncoder {
  scale: QualityScale;
  /** the bitstream at one quality (8.8 fixed point, on the scale's grid or the requested maximum) */
  at(qualityFixed: number): Promise<Uint8Array>;
  model: { name: string; id: string };
  provider: string;
}

export interface EncodeSetup {
  /** the package to encode with (codec or editor package, as the kind uses); default: the first loaded */
  model?: string | undefined;
  /** container flags set by the caller (alpha flattened) */
  flags: number;
  stop?: StopCheck | undefined;
}

export type Decoded = RgbImage & { quality: number; model: { name: string; id: string } };

export interface CodecKindModule {
  name: CodecChoice;
  /** the codec byte of its bitstreams (docs/bitstream-format.md) */
  code: CodecKind;
  /** its name in the evaluation harness and the policy table */
  harnessName: string;
  /** how `inspect` names its bitstreams, when not by `name` */
  label?: string;
  /** the standard file its bitstreams hold, when they hold one */
  payload?: PayloadFormat;
  /** the kind of package an encode names and a bitstream's model id points to */
  package?: 'model' | 'editor';
  /** its quality scale; a kind coding with a model package takes the package's levels */
  scale(model: ModelQuality): QualityScale;
  encoder(ctx: KindContext, img: RgbImage, setup: EncodeSetup): KindEncoder;
  /** framing, CRC and the announced size are checked before this is called */
  decode(ctx: KindContext, c: Container, stop?: StopCheck): Promise<Decoded>;
}
