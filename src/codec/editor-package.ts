/**
 * Editor packages (docs/model-format.md, "Editor packages"): the learned networks around a standard
 * codec core. A pre-editor runs on the image before the AVIF encoder, a restoration network on the
 * decoded AVIF; either may be absent. The manifest is validated, every graph's SHA-256 checked, and
 * the package id (SHA-256 of one `<role>:<hex digest>\n` line per graph, in the manifest's order)
 * recomputed: a bitstream names the package by the id's first 8 bytes.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { CodecError, stopPoint, type StopCheck } from './errors.js';
import { resolveProviders, type ExecutionProviderName } from './execution-providers.js';
import type { RgbImage } from './image-io.js';
import { createSession, DEFAULT_SESSION_SETTINGS, type LoadOptions } from './model-package.js';
import { cropRgb, fromTensor, pasteRgb, toPaddedTensor } from './pixels.js';
import { KIND_NAMES } from './kinds/names.js';

export const EDITOR_FORMAT = 'vlmpress-editor';
const GRAPH_ROLES = ['preeditor', 'restoration'] as const;
type GraphRole = (typeof GRAPH_ROLES)[number];

export interface EditorManifest {
  name: string;
  id: string;
  /** the codec the networks were trained around; "avif" is the only one this build runs */
  core: typeof KIND_NAMES.avif;
  graphs: Partial<Record<GraphRole, { file: string; sha256: string }>>;
  /** names of the packages this one replaces: they stay loadable to decode what they made, but new
   * encodes take this one by default */
  supersedes: string[];
}

export interface EditorPackage {
  dir: string;
  manifest: EditorManifest;
  preeditor?: ort.InferenceSession;
  restoration?: ort.InferenceSession;
  provider: ExecutionProviderName;
}

function bad(dir: string, message: string): never {
  throw new CodecError('bad_model_package', `editor package ${dir}: ${message}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function isEditorManifest(raw: unknown): boolean {
  return isRecord(raw) && raw['format'] === EDITOR_FORMAT;
}

export function parseEditorManifest(dir: string, raw: unknown): EditorManifest {
  if (!isRecord(raw) || raw['format'] !== EDITOR_FORMAT) bad(dir, `manifest format is not "${EDITOR_FORMAT}"`);
  if (raw['format_version'] !== 1) bad(dir, `manifest format_version ${String(raw['format_version'])} is not supported (1)`);
  const name = raw['name'];
  const id = raw['id'];
  if (typeof name !== 'string' || name.length === 0) bad(dir, 'manifest field name is missing or invalid');
  if (typeof id !== 'string' || !/^[0-9a-f]{64}$/.test(id)) bad(dir, 'manifest field id is missing or invalid');
  if (raw['core'] !== KIND_NAMES.avif) bad(dir, `core codec ${String(raw['core'])} is not supported (${KIND_NAMES.avif})`);
  const graphs = raw['graphs'];
  if (!isRecord(graphs)) bad(dir, 'manifest field graphs is missing or invalid');
  const out: EditorManifest['graphs'] = {};
  for (const [role, g] of Object.entries(graphs)) {
    if (!(GRAPH_ROLES as readonly string[]).includes(role)) bad(dir, `unknown graph role "${role}" (known: ${GRAPH_ROLES.join(', ')})`);
    if (!isRecord(g) || typeof g['file'] !== 'string' || typeof g['sha256'] !== 'string' || !/^[0-9a-f]{64}$/.test(g['sha256']))
      bad(dir, `manifest field graphs.${role} needs a file and a sha256`);
    out[role as GraphRole] = { file: g['file'], sha256: g['sha256'] };
  }
  if (Object.keys(out).length === 0) bad(dir, 'an editor package needs at least one graph');
  const supersedes = raw['supersedes'] ?? [];
  if (!Array.isArray(supersedes) || !supersedes.every((n) => typeof n === 'string' && n.length > 0 && n !== name))
    bad(dir, 'manifest field supersedes must be a list of other package names');
  return { name, id, core: KIND_NAMES.avif, graphs: out, supersedes: supersedes as string[] };
}

/** Packages in their order, those another one in the list supersedes moved to the end: the first is
 * the default for new encodes, and old bitstreams still find the package they name. */
export function currentFirst<T>(packages: T[], manifestOf: (p: T) => EditorManifest): T[] {
  const replaced = new Set(packages.flatMap((p) => manifestOf(p).supersedes));
  const isReplaced = (p: T) => replaced.has(manifestOf(p).name);
  return [...packages.filter((p) => !isReplaced(p)), ...packages.filter(isReplaced)];
}

export async function loadEditorPackage(dir: string, raw: unknown, options: LoadOptions = {}): Promise<EditorPackage> {
  const settings = { ...DEFAULT_SESSION_SETTINGS, ...options.settings };
  const manifest = parseEditorManifest(dir, raw);
  const entries = Object.entries(manifest.graphs) as [GraphRole, { file: string; sha256: string }][];
  const files: [GraphRole, Buffer][] = [];
  for (const [role, g] of entries) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(dir, g.file));
    } catch (e) {
      bad(dir, `cannot read ${g.file} (${(e as Error).message})`);
    }
    const digest = createHash('sha256').update(bytes).digest('hex');
    if (digest !== g.sha256) bad(dir, `${g.file} has SHA-256 ${digest}, the manifest says ${g.sha256}`);
    files.push([role, bytes]);
  }
  const id = createHash('sha256')
    .update(entries.map(([role, g]) => `${role}:${g.sha256}\n`).join(''))
    .digest('hex');
  if (id !== manifest.id) bad(dir, `package id ${id} does not match the manifest's ${manifest.id}`);

  for (const provider of resolveProviders(settings.executionProviders)) {
    const sessions: Partial<Record<GraphRole, ort.InferenceSession>> = {};
    try {
      for (const [role, bytes] of files) {
        sessions[role] = await createSession(bytes, settings, provider);
      }
      options.log?.(`loaded editor package ${manifest.name}`, { id: manifest.id, provider, graphs: Object.keys(sessions) });
      return { dir, manifest, provider, ...sessions };
    } catch (e) {
      await Promise.all(Object.values(sessions).map((s) => s.release()));
      options.log?.(`execution provider ${provider} failed for ${manifest.name}, trying the next`, { error: (e as Error).message });
    }
  }
  bad(dir, 'no execution provider could load the graphs');
}

export async function releaseEditorPackage(p: EditorPackage): Promise<void> {
  await Promise.all([p.preeditor?.release(), p.restoration?.release()]);
}

/** Run one of the package's networks on an image for an AVIF quality (1..100). */
export async function runEditorGraph(session: ort.InferenceSession, img: RgbImage, quality: number): Promise<RgbImage> {
  const [inputName, qualityName] = session.inputNames;
  const out = await session.run({
    [inputName!]: new ort.Tensor('float32', toPaddedTensor(img, 1).data, [1, 3, img.height, img.width]),
    [qualityName!]: new ort.Tensor('float32', Float32Array.of(quality), [1]),
  });
  return fromTensor(out[session.outputNames[0]!]!.data as Float32Array, img.height, img.width, img.width, img.height);
}

/**
 * Restoration networks are local: in v2, 14 half-resolution pixels of context reach each output
 * pixel (stem, six residual blocks and head, 3x3 each), 28 full-resolution ones. Tiles with RESTORE_HALO
 * pixels of context on every inner side then give the one-run pixels (to float rounding: within one
 * level, test/codec/semantic-avif.test.ts checks every shipped package), in memory bounded by the tile,
 * and with a safe point between tiles. Both are even, so tiles keep the network's 2x2 pixel grouping.
 */
const RESTORE_TILE = 512;
const RESTORE_HALO = 32;

/** The restoration network over an image of any size, tile by tile; `stop` is asked between tiles. */
export async function runRestoration(
  session: ort.InferenceSession,
  img: RgbImage,
  quality: number,
  stop?: StopCheck,
  tile = RESTORE_TILE,
): Promise<RgbImage> {
  if (img.width <= tile + 2 * RESTORE_HALO && img.height <= tile + 2 * RESTORE_HALO) return runEditorGraph(session, img, quality);
  const out: RgbImage = { data: new Uint8Array(img.width * img.height * 3), width: img.width, height: img.height };
  for (let ty = 0; ty < img.height; ty += tile) {
    for (let tx = 0; tx < img.width; tx += tile) {
      stopPoint(stop);
      const y0 = Math.max(0, ty - RESTORE_HALO);
      const x0 = Math.max(0, tx - RESTORE_HALO);
      const y1 = Math.min(img.height, ty + tile + RESTORE_HALO);
      const x1 = Math.min(img.width, tx + tile + RESTORE_HALO);
      const restored = await runEditorGraph(session, cropRgb(img, x0, y0, x1 - x0, y1 - y0), quality);
      pasteRgb(out, restored, x0, y0, tx, ty, Math.min(img.width, tx + tile), Math.min(img.height, ty + tile));
    }
  }
  return out;
}
