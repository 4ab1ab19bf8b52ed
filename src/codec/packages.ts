/**
 * The model packages a Codec holds: codec packages (the learned codec) and editor packages (semantic
 * AVIF), found under models/, loaded, looked up by name or id, released. Describing them reads the
 * manifests alone (no graphs loaded).
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  currentFirst,
  isEditorManifest,
  loadEditorPackage,
  parseEditorManifest,
  releaseEditorPackage,
  type EditorPackage,
} from './editor-package.js';
import { CodecError } from './errors.js';
import {
  loadModelPackage,
  parseManifest,
  readManifestJson,
  releaseModelPackage,
  type LoadOptions,
  type ModelPackage,
} from './model-package.js';

/** The project root: the nearest folder above this module with the package.json (from src/ or dist/src/). */
function projectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/** models/ of this installation (the shipped packages live in the project, never outside it). */
export const BUNDLED_MODELS_DIR = path.join(projectRoot(), 'models');

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

const named = (p: { manifest: { name: string; id: string } }, nameOrId: string) =>
  p.manifest.name === nameOrId || p.manifest.id === nameOrId || (nameOrId.length >= 16 && p.manifest.id.startsWith(nameOrId));

/** Loaded codec and editor packages; the first codec package (or `defaultModel`) encodes by default. */
export class Packages {
  private constructor(
    readonly models: readonly ModelPackage[],
    readonly editors: readonly EditorPackage[],
    readonly defaultModel: ModelPackage,
  ) {}

  static async load(dirs: string[], options: LoadOptions, defaultModel?: string): Promise<Packages> {
    const models: ModelPackage[] = [];
    const editors: EditorPackage[] = [];
    try {
      for (const dir of dirs) {
        const raw = await readManifestJson(dir);
        if (isEditorManifest(raw)) editors.push(await loadEditorPackage(dir, raw, options));
        else models.push(await loadModelPackage(dir, options));
      }
      if (models.length === 0) throw new CodecError('bad_model_package', `no codec model package among ${dirs.join(', ')}`);
      const ids = [...models.map((m) => m.manifest.id), ...editors.map((e) => e.manifest.id)];
      if (new Set(ids.map((id) => id.slice(0, 16))).size !== ids.length)
        throw new CodecError('bad_model_package', 'two model packages share an id prefix');
      const loaded = new Packages(
        models,
        currentFirst(editors, (e) => e.manifest),
        models[0]!,
      );
      return defaultModel ? new Packages(loaded.models, loaded.editors, loaded.model(defaultModel)) : loaded;
    } catch (e) {
      await Promise.all([...models.map(releaseModelPackage), ...editors.map(releaseEditorPackage)]);
      throw e;
    }
  }

  async release(): Promise<void> {
    await Promise.all([...this.models.map(releaseModelPackage), ...this.editors.map(releaseEditorPackage)]);
  }

  /** A loaded model by name, full id or id prefix; the default one when none is named. */
  model(nameOrId?: string): ModelPackage {
    if (nameOrId === undefined) return this.defaultModel;
    const m = this.models.find((p) => named(p, nameOrId));
    if (!m)
      throw new CodecError(
        'unknown_model',
        `model "${nameOrId}" is not loaded (loaded: ${this.models.map((p) => p.manifest.name).join(', ')})`,
      );
    return m;
  }

  /** An editor package by name, full id or id prefix; when none is named, the first loaded that no
   * other loaded package supersedes. */
  editor(nameOrId?: string): EditorPackage {
    const e = nameOrId === undefined ? this.editors[0] : this.editors.find((p) => named(p, nameOrId));
    if (!e)
      throw new CodecError(
        'unknown_model',
        nameOrId === undefined
          ? 'semantic AVIF needs an editor package and none is loaded'
          : `editor package "${nameOrId}" is not loaded (loaded: ${this.editors.map((p) => p.manifest.name).join(', ') || 'none'})`,
      );
    return e;
  }

  modelByPrefix(prefix: string): ModelPackage | undefined {
    return this.models.find((p) => p.manifest.id.startsWith(prefix));
  }

  editorByPrefix(prefix: string): EditorPackage | undefined {
    return this.editors.find((p) => p.manifest.id.startsWith(prefix));
  }

  /** The loaded package of either kind that a bitstream's model id field names, if any. */
  byPrefix(kind: 'model' | 'editor', prefix: string): ModelPackage | EditorPackage | undefined {
    return kind === 'model' ? this.modelByPrefix(prefix) : this.editorByPrefix(prefix);
  }
}
