/**
 * The per-request encoding decision, a pure function of the request, the backend profile and the
 * model's policy table:
 * 1. the image is downscaled to what the receiving model sees (resolution.ts);
 * 2. an explicit `quality` wins;
 * 3. otherwise the task class (task-classifier.ts) and the accuracy target pick the lowest quality
 *    measured to keep that accuracy (policy-table.ts); without a table, VLMPRESS_DEFAULT_QUALITY;
 * 4. a byte budget (`max_bytes`) then takes the highest quality up to that one which fits.
 * The decision and its reason go back to the client.
 */
import type { ClassicalCodec, ResizeRule } from '../codec/index.js';
import { gatewayCodec, type PolicyTable } from './policy-table.js';
import { resizeRuleFor, type ImageDetail, type ResolutionProfile } from './resolution.js';
import type { ImageStats } from './image-stats.js';
import { classifyTask, type TaskClass } from './task-classifier.js';

export interface PolicyRequest {
  quality?: number;
  maxBytes?: number;
  /** a task hint from the client (general, text/ocr, detail, ...) */
  task?: string;
  prompt?: string;
  /** accuracy to keep, relative to the original (a target of the policy table, e.g. 0.98) */
  target?: string;
  /** the resolution profile of the backend the image goes to (proxy requests) */
  profile?: ResolutionProfile;
  /** OpenAI image `detail` */
  detail?: ImageDetail;
  /** cheap statistics of the image (image-stats.ts), for requests whose words say nothing */
  image?: ImageStats | null;
}

export interface PolicyDecision {
  /** the learned codec, or a classical one where the table measured it cheaper for this class */
  codec: 'learned' | ClassicalCodec;
  quality: number;
  maxBytes?: number;
  resize: ResizeRule;
  source: 'request' | 'policy' | 'default';
  taskClass: TaskClass;
  target: string | null;
  profile: ResolutionProfile;
  /** the measured scores behind a policy choice */
  expected?: Record<string, number> | null;
  reason: string;
}

/** The configuration the decision reads (a subset of the gateway's; the policy does no IO). */
export interface PolicySettings {
  maxSide: number;
  defaultQuality: number;
  defaultTarget: string;
}

export function decidePolicy(config: PolicySettings, table: PolicyTable | null, req: PolicyRequest): PolicyDecision {
  const profile = req.profile ?? 'none';
  const { rule, note } = resizeRuleFor(profile, req.detail, config.maxSide);
  const { taskClass, reason: why } = classifyTask(req);
  const budget = req.maxBytes !== undefined ? { maxBytes: req.maxBytes } : {};
  const budgetNote = req.maxBytes !== undefined ? `; then the highest quality up to that within ${req.maxBytes} bytes` : '';
  const base = { codec: 'learned' as const, resize: rule, taskClass, profile, ...budget };
  if (req.quality !== undefined) {
    return {
      ...base,
      quality: req.quality,
      source: 'request',
      target: null,
      reason: `quality ${req.quality} set by the request${budgetNote}; size: ${note}`,
    };
  }
  const target = req.target ?? table?.defaultTarget ?? config.defaultTarget;
  const entry = table?.classes[taskClass]?.targets[target];
  const codec = entry ? gatewayCodec(entry.codec) : undefined;
  if (entry && codec) {
    const measured = entry.reached
      ? `measured to keep ${Number(target) * 100}% of the original's ${table!.classes[taskClass]!.metrics.join(' and ')}`
      : `nothing measured reaches ${Number(target) * 100}%: the setting that comes closest`;
    const what =
      codec === 'learned'
        ? `quality ${entry.quality}`
        : `${codec} quality ${entry.quality} (measured cheaper than the learned codec for ${taskClass})`;
    return {
      ...base,
      codec,
      quality: entry.quality,
      source: 'policy',
      target,
      expected: entry.scores,
      reason: `task ${taskClass} (${why}), target ${target}: ${what}, ${measured}${budgetNote}; size: ${note}`,
    };
  }
  return {
    ...base,
    quality: config.defaultQuality,
    source: 'default',
    target: null,
    reason: `task ${taskClass} (${why}); ${table ? `the policy table has no ${taskClass} entry for target ${target}` : 'no policy table for this model'}: default quality ${config.defaultQuality} (VLMPRESS_DEFAULT_QUALITY)${budgetNote}; size: ${note}`,
  };
}

/** The decision in one header value: `policy; class=text; target=0.98; quality=6.5` (the full reason is in JSON bodies). */
export function policyHeader(d: PolicyDecision): string {
  return [
    d.source,
    `class=${d.taskClass}`,
    ...(d.codec !== 'learned' ? [`codec=${d.codec}`] : []),
    ...(d.target ? [`target=${d.target}`] : []),
    `quality=${d.quality}`,
    ...(d.maxBytes !== undefined ? [`max_bytes=${d.maxBytes}`] : []),
  ].join('; ');
}

/** Whether a request leaves the task class to the image itself (no quality, hint or cue in words). */
export function needsImageStats(req: PolicyRequest): boolean {
  return req.quality === undefined && classifyTask({ task: req.task, prompt: req.prompt }).taskClass === 'general' && !req.task;
}
