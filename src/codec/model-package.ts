/**
 * Loading a model package (docs/model-format.md): the manifest is validated, every file's SHA-256 is
 * checked against it, the package id is recomputed, and the CDF tables are parsed. Sessions are
 * created once per package and reused for every request.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { parseEntropyTables, type EntropyTables } from './cdf-tables.js';
import { CodecError } from './errors.js';
import { resolveProviders, type ExecutionProviderName } from './execution-providers.js';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

export interface SessionSettings {
  /** preference order; intersected with what is installed, CPU always last */
  executionProviders: ExecutionProviderName[];
  /** threads per ONNX Runtime session (intra-op); 0 lets ONNX Runtime choose */
  intraOpThreads: number;
  graphOptimizationLevel: GraphOptimizationLevel;
  /**
   * ONNX Runtime's CPU memory arena keeps the peak of every shape it has seen and never returns it;
   * with request images of arbitrary sizes that grows without bound (measured: 1.3 GB after 10,000
   * fuzz images), so it is off by default. Turn it on for fixed-size batch work.
   */
  memoryArena: boolean;
}

export const DEFAULT_SESSION_SETTINGS: SessionSettings = {
  executionProviders: ['cuda', 'cpu'],
  intraOpThreads: 0,
  graphOptimizationLevel: 'all',
  memoryArena: false,
};

export interface ModelManifest {
  name: string;
  id: string;
  quality: { levels: number; min: number; max: number; default: number };
  paddingMultiple: number;
  latentChannels: number;
  latentStride: number;
  hyperChannels: number;
  hyperStride: number;
  hyperClip: number;
  upsample: number;
  meanDenominator: number;
  scaleLevels: number;
  files: { encoder: string; entropy: string; decoder: string; tables: string };
}

export interface ModelPackage {
  dir: string;
  manifest: ModelManifest;
  tables: EntropyTables;
  encoder: ort.InferenceSession;
  entropy: ort.InferenceSession;
  decoder: ort.InferenceSession;
  /** the provider running the encoder and decoder graphs; the integer entropy graph always runs on the CPU */
  provider: ExecutionProviderName;
}

function bad(dir: string, message: string): never {
  throw new CodecError('bad_model_package', `model package ${dir}: ${message}`);
}

function field<T>(dir: string, obj: unknown, keyPath: string, check: (v: unknown) => boolean): T {
  let v: unknown = obj;
  for (const k of keyPath.split('.')) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  if (!check(v)) bad(dir, `manifest field ${keyPath} is missing or invalid`);
  return v as T;
}

const isPosInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const isString = (v: unknown) => typeof v === 'string' && v.length > 0;
const isHex64 = (v: unknown) => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

export function parseManifest(dir: string, raw: unknown): ModelManifest & { hashes: Record<string, string> } {
  if (field<string>(dir, raw, 'format', isString) !== 'vlmpress-model') bad(dir, 'manifest format is not "vlmpress-model"');
  const version = field<number>(dir, raw, 'format_version', isPosInt);
  if (version !== 1) bad(dir, `manifest format_version ${version} is not supported (1)`);
  const fileOf = (key: string) => field<string>(dir, raw, key + '.file', isString);
  const hashOf = (key: string) => field<string>(dir, raw, key + '.sha256', isHex64);
  const levels = field<number>(dir, raw, 'quality.levels', isPosInt);
  const m = {
    name: field<string>(dir, raw, 'name', isString),
    id: field<string>(dir, raw, 'id', isHex64),
    quality: {
      levels,
      min: field<number>(dir, raw, 'quality.min', isPosInt),
      max: field<number>(dir, raw, 'quality.max', isPosInt),
      default: field<number>(dir, raw, 'quality.default', (v) => typeof v === 'number'),
    },
    paddingMultiple: field<number>(dir, raw, 'padding.multiple', isPosInt),
    latentChannels: field<number>(dir, raw, 'latent.channels', isPosInt),
    latentStride: field<number>(dir, raw, 'latent.stride', isPosInt),
    hyperChannels: field<number>(dir, raw, 'hyper_latent.channels', isPosInt),
    hyperStride: field<number>(dir, raw, 'hyper_latent.stride', isPosInt),
    hyperClip: field<number>(dir, raw, 'hyper_latent.clip', isPosInt),
    upsample: field<number>(dir, raw, 'entropy_parameters.upsample', isPosInt),
    meanDenominator: field<number>(dir, raw, 'entropy_parameters.mean_denominator', isPosInt),
    scaleLevels: field<number>(dir, raw, 'entropy_parameters.scale_levels', isPosInt),
    files: {
      encoder: fileOf('graphs.encoder'),
      entropy: fileOf('graphs.entropy'),
      decoder: fileOf('graphs.decoder'),
      tables: fileOf('tables'),
    },
    hashes: {
      encoder: hashOf('graphs.encoder'),
      entropy: hashOf('graphs.entropy'),
      decoder: hashOf('graphs.decoder'),
      tables: hashOf('tables'),
    },
  };
  if (m.quality.min !== 1 || m.quality.max !== levels || m.quality.default < 1 || m.quality.default > levels)
    bad(dir, 'quality range must be 1..levels');
  if (m.hyperStride !== m.latentStride * m.upsample) bad(dir, 'hyper_latent.stride must be latent.stride x upsample');
  if (m.paddingMultiple % m.latentStride !== 0) bad(dir, 'padding.multiple must be a multiple of latent.stride');
  return m;
}

/** One ONNX Runtime session on one provider, with the package settings (a file path or the graph's bytes). */
export async function createSession(
  graph: string | Uint8Array,
  settings: SessionSettings,
  provider: ExecutionProviderName,
): Promise<ort.InferenceSession> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    enableCpuMemArena: settings.memoryArena,
    graphOptimizationLevel: settings.graphOptimizationLevel,
  };
  return typeof graph === 'string' ? ort.InferenceSession.create(graph, options) : ort.InferenceSession.create(graph, options);
}

export interface LoadOptions {
  settings?: Partial<SessionSettings>;
  log?: (message: string, fields?: Record<string, unknown>) => void;
}

/** A package's manifest.json, parsed but not yet validated (codec and editor packages share the file name). */
export async function readManifestJson(dir: string): Promise<unknown> {
  let manifestText: string;
  try {
    manifestText = await readFile(path.join(dir, 'manifest.json'), 'utf8');
  } catch (e) {
    bad(dir, `cannot read manifest.json (${(e as Error).message})`);
  }
  try {
    return JSON.parse(manifestText) as unknown;
  } catch {
    bad(dir, 'manifest.json is not JSON');
  }
}

/** Read and validate a package's manifest without loading its graphs (what the gateway needs to describe a model). */
export async function readManifest(dir: string): Promise<ModelManifest & { hashes: Record<string, string> }> {
  return parseManifest(dir, await readManifestJson(dir));
}

export async function loadModelPackage(dir: string, options: LoadOptions = {}): Promise<ModelPackage> {
  const settings = { ...DEFAULT_SESSION_SETTINGS, ...options.settings };
  const { hashes, ...manifest } = await readManifest(dir);

  // Hash every file; the package id is the hash of the four hex digests in this order.
  const keys = ['encoder', 'entropy', 'decoder', 'tables'] as const;
  const contents: Record<string, Buffer> = {};
  for (const k of keys) {
    const file = path.join(dir, manifest.files[k]);
    try {
      contents[k] = await readFile(file);
    } catch (e) {
      bad(dir, `cannot read ${manifest.files[k]} (${(e as Error).message})`);
    }
    const digest = createHash('sha256').update(contents[k]!).digest('hex');
    if (digest !== hashes[k]) bad(dir, `${manifest.files[k]} has SHA-256 ${digest}, the manifest says ${hashes[k]}`);
  }
  const id = createHash('sha256')
    .update(keys.map((k) => hashes[k]).join(''))
    .digest('hex');
  if (id !== manifest.id) bad(dir, `package id ${id} does not match the manifest's ${manifest.id}`);

  let tablesJson: unknown;
  try {
    tablesJson = JSON.parse(contents['tables']!.toString('utf8'));
  } catch {
    bad(dir, 'entropy tables are not JSON');
  }
  const tables = parseEntropyTables(tablesJson, { hyperChannels: manifest.hyperChannels, gaussianScales: manifest.scaleLevels });

  // Float graphs on the first provider that works; the integer entropy graph on the CPU (integer
  // convolutions have no CUDA kernels, and the graph is tiny).
  let encoder: ort.InferenceSession | undefined;
  let decoder: ort.InferenceSession | undefined;
  let provider: ExecutionProviderName = 'cpu';
  for (const p of resolveProviders(settings.executionProviders)) {
    try {
      encoder = await createSession(path.join(dir, manifest.files.encoder), settings, p);
      decoder = await createSession(path.join(dir, manifest.files.decoder), settings, p);
      provider = p;
      break;
    } catch (e) {
      await encoder?.release();
      encoder = undefined;
      options.log?.(`execution provider ${p} failed for ${manifest.name}, trying the next`, { error: (e as Error).message });
    }
  }
  if (!encoder || !decoder) bad(dir, 'no execution provider could load the graphs');
  const entropy = await createSession(path.join(dir, manifest.files.entropy), settings, 'cpu');
  options.log?.(`loaded model ${manifest.name}`, {
    id: manifest.id,
    provider,
    threads: settings.intraOpThreads,
    optimization: settings.graphOptimizationLevel,
  });
  return { dir, manifest, tables, encoder, entropy, decoder, provider };
}

export async function releaseModelPackage(m: ModelPackage): Promise<void> {
  await Promise.all([m.encoder.release(), m.entropy.release(), m.decoder.release()]);
}
