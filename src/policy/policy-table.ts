/**
 * The calibrated policy of a model package (`models/<name>/policy.json`, built by
 * `eval/vlmpress_eval/policy.py` from measured rate–accuracy curves): for each task class and
 * target, the quality to encode at. A table built for another model is refused, never half-used.
 */
import { readFile } from 'node:fs/promises';
import { CLASSICAL_CODECS, type ClassicalCodec } from '../codec/index.js';
import { TASK_CLASSES, type TaskClass } from './task-classifier.js';

export interface PolicyEntry {
  codec: string;
  quality: number;
  /** false: no measured quality reached the target; the entry holds the top quality */
  reached: boolean;
  bpp: number | null;
  scores: Record<string, number> | null;
}

export interface PolicyTable {
  modelId: string;
  targets: string[];
  defaultTarget: string;
  classes: Partial<Record<TaskClass, { metrics: string[]; targets: Record<string, PolicyEntry> }>>;
}

/** Policy-table codec names: `vlmpress` is the learned codec; `sharp-<codec>` a classical codec as the gateway makes it (sharp). */
export function gatewayCodec(name: string): 'learned' | ClassicalCodec | undefined {
  if (name === 'vlmpress') return 'learned';
  const c = name.startsWith('sharp-') ? name.slice(6) : '';
  return (CLASSICAL_CODECS as readonly string[]).includes(c) ? (c as ClassicalCodec) : undefined;
}

export class PolicyTableError extends Error {}

/** A policy file as read, before any check: every field may be missing or of the wrong type. */
interface RawPolicyFile {
  format?: unknown;
  format_version?: unknown;
  model?: { id?: unknown };
  targets?: unknown;
  default_target?: unknown;
  classes?: Partial<Record<string, { missing?: unknown; metrics?: string[]; targets?: Record<string, Partial<PolicyEntry> | undefined> }>>;
}

export function parsePolicyTable(raw: unknown, modelId: string, where: string): PolicyTable {
  const fail = (m: string): never => {
    throw new PolicyTableError(`${where}: ${m}`);
  };
  const o = (raw ?? {}) as RawPolicyFile;
  if (o.format !== 'vlmpress-policy' || o.format_version !== 1) fail('not a vlmpress-policy version 1 file');
  if (o.model?.id !== modelId) fail(`built for model ${String(o.model?.id ?? '?')}, not ${modelId}`);
  const raws = o.targets;
  if (!Array.isArray(raws) || !raws.every((t) => typeof t === 'string' && Number(t) > 0 && Number(t) <= 1))
    fail('targets must be strings like "0.98"');
  const targets = raws as string[];
  const defaultTarget = o.default_target;
  if (typeof defaultTarget !== 'string' || !targets.includes(defaultTarget)) return fail('default_target must be one of targets');
  const classes: PolicyTable['classes'] = {};
  for (const c of TASK_CLASSES) {
    const entry = o.classes?.[c];
    if (!entry || entry.missing) continue; // a class the evaluation did not measure falls back to the default
    for (const t of targets) {
      const e = entry.targets?.[t];
      if (typeof e?.quality !== 'number' || !(e.quality >= 1) || typeof e.codec !== 'string')
        return fail(`classes.${c}.targets.${t} needs codec and quality`);
      // A codec this gateway cannot make would otherwise fall back silently, with a wrong reason.
      if (!gatewayCodec(e.codec))
        fail(
          `classes.${c}.targets.${t}: unknown codec "${e.codec}" (known: vlmpress, ${CLASSICAL_CODECS.map((k) => `sharp-${k}`).join(', ')})`,
        );
    }
    classes[c] = { metrics: entry.metrics ?? [], targets: entry.targets as Record<string, PolicyEntry> };
  }
  return { modelId, targets, defaultTarget, classes };
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
