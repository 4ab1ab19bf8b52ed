/**
 * The calibrated policy of a model package (`models/<name>/policy.json`, built by
 * `eval/vlmpress_eval/policy.py` from measured rate–accuracy curves): for each task class and
 * target, the quality to encode at. A table built for another model is refused, never half-used.
 * Targets are `0.98` (task accuracy kept, relative to the original's) or `agreement:0.98` (the share
 * of the original's predictions kept: the strict option); version 1 tables had only agreement targets.
 */
import { readFile } from 'node:fs/promises';
import { HARNESS_CODECS, harnessCodec as gatewayCodec, KIND_NAMES } from '../codec/index.js';
import { TASK_CLASSES, type TaskClass } from './task-classifier.js';

export interface PolicyEntry {
  /** what the target measures, and the metrics that reach it */
  measure: TargetMeasure;
  metrics: string[];
  codec: string;
  quality: number;
  /** false: no measured quality reached the target; the entry holds the top quality */
  reached: boolean;
  bpp: number | null;
  scores: Record<string, number> | null;
  /** text: the smallest fraction of its size an image may be brought to (OCR keeps the target there) */
  minScale?: number;
  /** where the entry's codec is avif-screen: the choice without it, for images that do not look rendered and gateways without avifenc */
  withoutScreen?: Pick<PolicyEntry, 'codec' | 'quality' | 'reached' | 'bpp' | 'scores'>;
}

/** One measured setting of a codec: its rate and its scores relative to the original. */
export interface CurvePoint {
  setting: number;
  bpp: number;
  scores: Record<string, number>;
}

/** measure -> codec (policy-table names) -> points, cheapest first: what a class's decisions were read from */
export type ClassCurves = Partial<Record<TargetMeasure, Record<string, CurvePoint[]>>>;

export interface PolicyTable {
  modelId: string;
  targets: string[];
  defaultTarget: string;
  classes: Partial<Record<TaskClass, { targets: Record<string, PolicyEntry>; curves?: ClassCurves }>>;
}

export type TargetMeasure = 'accuracy' | 'agreement';

/** `0.98` → accuracy 0.98; `agreement:0.98` → agreement 0.98; anything else null. */
export function parseTarget(key: string): { measure: TargetMeasure; value: number } | null {
  const [measure, value] = key.startsWith('agreement:') ? (['agreement', key.slice(10)] as const) : (['accuracy', key] as const);
  const v = Number(value);
  return /^\d(\.\d+)?$/.test(value) && v > 0 && v <= 1 ? { measure, value: v } : null;
}

/** Policy-table codec names are the evaluation harness's (`vlmpress` the learned codec, `sharp-<codec>` a
 * classical codec as the gateway makes it, `semantic-avif`): the codec table maps them to the gateway's. */
export { gatewayCodec };

export class PolicyTableError extends Error {}

/** A policy file as read, before any check: every field may be missing or of the wrong type. */
interface RawPolicyFile {
  format?: unknown;
  format_version?: unknown;
  model?: { id?: unknown };
  targets?: unknown;
  default_target?: unknown;
  classes?: Partial<
    Record<
      string,
      {
        missing?: unknown;
        metrics?: string[] | Record<string, string[]>;
        targets?: Record<string, Partial<PolicyEntry> | undefined>;
        curves?: unknown;
      }
    >
  >;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The measured curves of a class (version 2 tables built since the inspector page); shape-checked, values kept. */
function parseCurves(raw: unknown, fail: (m: string) => never): ClassCurves {
  if (!isObject(raw)) return fail('must be an object');
  const out: ClassCurves = {};
  for (const [measure, codecs] of Object.entries(raw)) {
    if (measure !== 'accuracy' && measure !== 'agreement') return fail(`unknown measure "${measure}"`);
    if (!isObject(codecs)) return fail(`${measure} must map codecs to points`);
    const byCodec: Record<string, CurvePoint[]> = {};
    for (const [codec, points] of Object.entries(codecs)) {
      const ok =
        Array.isArray(points) &&
        points.every(
          (p) =>
            isObject(p) &&
            typeof p['setting'] === 'number' &&
            typeof p['bpp'] === 'number' &&
            isObject(p['scores']) &&
            Object.values(p['scores']).every((v) => typeof v === 'number'),
        );
      if (!ok) return fail(`${measure}.${codec} must be a list of {setting, bpp, scores}`);
      byCodec[codec] = points as CurvePoint[];
    }
    out[measure] = byCodec;
  }
  return out;
}

export function parsePolicyTable(raw: unknown, modelId: string, where: string): PolicyTable {
  const fail = (m: string): never => {
    throw new PolicyTableError(`${where}: ${m}`);
  };
  const o = (raw ?? {}) as RawPolicyFile;
  const version = o.format_version;
  if (o.format !== 'vlmpress-policy' || (version !== 1 && version !== 2)) fail('not a vlmpress-policy version 1 or 2 file');
  if (o.model?.id !== modelId) fail(`built for model ${String(o.model?.id ?? '?')}, not ${modelId}`);
  const raws = o.targets;
  if (!Array.isArray(raws) || !raws.every((t) => typeof t === 'string' && parseTarget(t) && (version === 2 || !t.includes(':'))))
    fail('targets must be strings like "0.98" or "agreement:0.98"');
  // Version 1 targets meant agreement; they are keyed as such so that a request's meaning never changes.
  const key = (t: string) => (version === 1 ? `agreement:${t}` : t);
  const targets = (raws as string[]).map(key);
  const defaultTarget = typeof o.default_target === 'string' ? key(o.default_target) : undefined;
  if (defaultTarget === undefined || !targets.includes(defaultTarget)) return fail('default_target must be one of targets');
  const classes: PolicyTable['classes'] = {};
  for (const c of TASK_CLASSES) {
    const entry = o.classes?.[c];
    if (!entry || entry.missing) continue; // a class the evaluation did not measure falls back to the default
    const entries: Record<string, PolicyEntry> = {};
    for (const raw of raws as string[]) {
      const t = key(raw);
      const e = entry.targets?.[raw];
      if (typeof e?.quality !== 'number' || !(e.quality >= 1) || typeof e.codec !== 'string')
        return fail(`classes.${c}.targets.${t} needs codec and quality`);
      // A codec this gateway cannot make would otherwise fall back silently, with a wrong reason.
      if (!gatewayCodec(e.codec)) fail(`classes.${c}.targets.${t}: unknown codec "${e.codec}" (known: ${HARNESS_CODECS.join(', ')})`);
      const measure = parseTarget(t)!.measure;
      const metrics = Array.isArray(entry.metrics) ? entry.metrics : (entry.metrics?.[measure] ?? []);
      const minScale = (e as { min_scale?: unknown }).min_scale;
      if (minScale !== undefined && !(typeof minScale === 'number' && minScale > 0 && minScale <= 1))
        fail(`classes.${c}.targets.${t}.min_scale must be a number in (0, 1]`);
      const alt = (e as { without_screen?: Partial<PolicyEntry> }).without_screen;
      if (
        alt !== undefined &&
        !(typeof alt?.quality === 'number' && alt.quality >= 1 && typeof alt.codec === 'string' && gatewayCodec(alt.codec))
      )
        fail(`classes.${c}.targets.${t}.without_screen needs a known codec and quality`);
      const { without_screen: _, ...fields } = e as Partial<PolicyEntry> & { without_screen?: unknown };
      entries[t] = {
        ...(fields as PolicyEntry),
        measure,
        metrics: e.metrics ?? metrics,
        ...(typeof minScale === 'number' ? { minScale } : {}),
        ...(alt ? { withoutScreen: alt as PolicyEntry } : {}),
      };
    }
    const curves = entry.curves === undefined ? undefined : parseCurves(entry.curves, (m) => fail(`classes.${c}.curves: ${m}`));
    classes[c] = { targets: entries, ...(curves ? { curves } : {}) };
  }
  return { modelId, targets, defaultTarget, classes };
}

/** An avif-screen entry as the builder chose without avif-screen; any other entry (or one without the
 * alternative, e.g. hand-made, whose encodes then fail with unsupported_codec where avifenc is missing) as it is. */
export function entryWithoutScreen(e: PolicyEntry): PolicyEntry {
  if (gatewayCodec(e.codec) !== KIND_NAMES.avifScreen || !e.withoutScreen) return e;
  const { withoutScreen, ...rest } = e;
  return { ...rest, ...withoutScreen };
}

/** The table for a gateway without avifenc: entries that chose avif-screen take the builder's choice without it. */
export function tableWithoutScreen(table: PolicyTable): PolicyTable {
  const classes: PolicyTable['classes'] = {};
  for (const [c, entry] of Object.entries(table.classes) as [TaskClass, NonNullable<PolicyTable['classes'][TaskClass]>][]) {
    const targets = Object.fromEntries(Object.entries(entry.targets).map(([t, e]) => [t, entryWithoutScreen(e)]));
    classes[c] = { ...entry, targets };
  }
  return { ...table, classes };
}

/** The table in `file` (by default the one beside a model package), or null when there is none. */
export async function loadPolicyTable(file: string, modelId: string): Promise<PolicyTable | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PolicyTableError(`${file}: not JSON`);
  }
  return parsePolicyTable(raw, modelId, file);
}
