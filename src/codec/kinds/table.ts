/**
 * The table of codec kinds: every kind this build encodes and decodes, in the order requests, the CLI
 * and error messages list them. Adding a kind is one module beside this file (see kind.ts) and one
 * line here; the container code, the request schema, GET /policy, the CLI and the inspector read
 * names, scales and capabilities from this table.
 */
import { parseContainer, type CodecKind } from '../container.js';
import { avif } from './avif.js';
import { avifScreen } from './avif-screen.js';
import { jpeg } from './jpeg.js';
import type { CodecKindModule, ModelQuality, QualityScale } from './kind.js';
import { learned } from './learned.js';
import { KIND_NAMES, type CodecChoice, type PayloadFormat } from './names.js';
import { semanticAvif } from './semantic-avif.js';
import { webp } from './webp.js';

export const KINDS: readonly CodecKindModule[] = [learned, avif, webp, jpeg, avifScreen, semanticAvif];

/** Every codec an encode may name, in the table's order. */
export const CODEC_CHOICES: readonly CodecChoice[] = KINDS.map((k) => k.name);
/** The codec of an encode that names none. */
export const DEFAULT_CODEC: CodecChoice = KIND_NAMES.learned;

export function isCodecChoice(name: string): name is CodecChoice {
  return (CODEC_CHOICES as readonly string[]).includes(name);
}

export function kindByName(name: CodecChoice): CodecKindModule {
  return KINDS.find((k) => k.name === name)!;
}

/** The kind of a container's codec byte (parseContainer has refused codes no kind has). */
export function kindByCode(code: CodecKind): CodecKindModule {
  const kind = KINDS.find((k) => k.code === code);
  if (!kind) throw new Error(`no codec kind has container code ${code}`);
  return kind;
}

/** Every kind's name in the evaluation harness and the policy table. */
export const HARNESS_CODECS: readonly string[] = KINDS.map((k) => k.harnessName);

/** The codec the evaluation harness and the policy table call `name` (`vlmpress`, `sharp-avif`, ...). */
export function harnessCodec(name: string): CodecChoice | undefined {
  return KINDS.find((k) => k.harnessName === name)?.name;
}

/** The kind of package a codec encodes with (the learned codec: a model package; semantic AVIF: an editor package). */
export function kindPackage(name: CodecChoice): 'model' | 'editor' | null {
  return kindByName(name).package ?? null;
}

/** A kind's quality scale; kinds coding with a model package take the default package's levels. */
export function qualityScale(name: CodecChoice, model: ModelQuality): QualityScale {
  return kindByName(name).scale(model);
}

/** The qualities a request may name for a kind, given the default model package's levels. */
export function qualityRange(name: CodecChoice, levels: number): { min: number; max: number; integer: boolean } {
  const { min, max, integer } = kindByName(name).scale({ levels, default: levels });
  return { min, max, integer };
}

/** What a client may know of every kind: for GET /policy, the request schema and the inspector. */
export function describeKinds(model: ModelQuality) {
  return KINDS.map((k) => {
    const s = k.scale(model);
    return {
      name: k.name,
      harnessName: k.harnessName,
      container: k.code,
      payload: k.payload ?? null,
      package: k.package ?? null,
      quality: { min: s.min, max: s.max, default: s.default, integer: s.integer, ladder: s.ladder },
    };
  });
}

/** The file format a codec choice stores (semantic AVIF stores AVIF); undefined for kinds that store no file. */
export function codecPayloadFormat(codec: string): PayloadFormat | undefined {
  return isCodecChoice(codec) ? kindByName(codec).payload : undefined;
}

/** The codec a bitstream was made with, by the name requests and answers use. */
export function bitstreamCodec(bitstream: Uint8Array): CodecChoice {
  return kindByCode(parseContainer(bitstream).codec).name;
}
