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
import { DEFAULT_CODEC, fittedSize, type CodecChoice, type ResizeRule } from '../codec/index.js';
import { entryWithoutScreen, gatewayCodec, parseTarget, type PolicyTable } from './policy-table.js';
import { resizeRuleFor, type ImageDetail, type ResolutionProfile } from './resolution.js';
import type { ImageStats } from './image-stats.js';
import { classifyTask, type TaskClass } from './task-classifier.js';
import { ruleWithinTokens } from './tokens.js';
import { HttpError } from '../http/http-error.js';

export interface PolicyRequest {
  /** the codec `quality` is for (default learned) */
  codec?: CodecChoice;
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
  /** image tokens the backend may bill for this image, by its profile's rule (tokens.ts) */
  maxImageTokens?: number;
  /** the image's size, when the decision needs it (a token budget) */
  size?: { width: number; height: number };
  /** cheap statistics of the image (image-stats.ts), for requests whose words say nothing */
  image?: ImageStats | null;
}

export interface PolicyDecision {
  /** the learned codec, or a classical one where the table measured it cheaper for this class */
  codec: CodecChoice;
  quality: number;
  maxBytes?: number;
  resize: ResizeRule;
  /** shadow: the closed loop moved the table's choice on verdicts from the backend itself (src/shadow) */
  source: 'request' | 'policy' | 'default' | 'shadow';
  /** the table's quality, when the closed loop moved it */
  offlineQuality?: number;
  /** the closed loop found no quality that keeps the target: the client's own image goes */
  sendOriginal?: boolean;
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
  const view = resizeRuleFor(profile, req.detail, config.maxSide);
  const { taskClass, reason: why } = classifyTask(req);
  // Text is never made smaller than OCR survives at the target (measured floors in the table).
  const floor = taskClass === 'text' ? table?.classes.text?.targets[req.target ?? table.defaultTarget]?.minScale : undefined;
  const { rule, note } =
    req.maxImageTokens !== undefined && req.size ? withinTokens(view, profile, req, req.maxImageTokens, req.size, floor ?? 0) : view;
  const budget = req.maxBytes !== undefined ? { maxBytes: req.maxBytes } : {};
  const budgetNote = req.maxBytes !== undefined ? `; then the highest quality up to that within ${req.maxBytes} bytes` : '';
  const base = { codec: DEFAULT_CODEC, resize: rule, taskClass, profile, ...budget };
  if (req.quality !== undefined) {
    const codec = req.codec ?? DEFAULT_CODEC;
    return {
      ...base,
      codec,
      quality: req.quality,
      source: 'request',
      target: null,
      reason: `${codec === DEFAULT_CODEC ? '' : `${codec} `}quality ${req.quality} set by the request${budgetNote}; size: ${note}`,
    };
  }
  const target = req.target ?? table?.defaultTarget ?? config.defaultTarget;
  const measuredEntry = table?.classes[taskClass]?.targets[target];
  // avif-screen was measured on rendered text; an image that does not look rendered (a photo of a
  // sign) takes the choice measured without it, which beats it there.
  const entry = measuredEntry && !req.image?.textLike ? entryWithoutScreen(measuredEntry) : measuredEntry;
  const notRendered = entry !== measuredEntry;
  const screenNote = notRendered
    ? ` (not avif-screen: ${req.image ? 'the image does not look like rendered text' : 'no image statistics say it is rendered text'})`
    : '';
  const codec = entry ? gatewayCodec(entry.codec) : undefined;
  if (entry && codec) {
    const percent = `${Math.round((parseTarget(target)?.value ?? 0) * 1000) / 10}%`;
    const kept = entry.measure === 'accuracy' ? 'task accuracy' : 'predictions (agreement)';
    const measured = entry.reached
      ? `measured to keep ${percent} of the original's ${kept}: ${entry.metrics.join(' and ')}`
      : `nothing measured keeps ${percent} of the original's ${kept}: the setting that comes closest`;
    const what =
      codec === DEFAULT_CODEC
        ? `quality ${entry.quality}`
        : `${codec} quality ${entry.quality} (measured cheaper than the learned codec for ${taskClass})`;
    return {
      ...base,
      codec,
      quality: entry.quality,
      source: 'policy',
      target,
      expected: entry.scores,
      reason: `task ${taskClass} (${why}), target ${target}: ${what}${screenNote}, ${measured}${budgetNote}; size: ${note}`,
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

/** The profile's view, made smaller when the image would cost more tokens than the budget allows. */
function withinTokens(
  view: { rule: ResizeRule; note: string },
  profile: ResolutionProfile,
  req: PolicyRequest,
  budget: number,
  size: { width: number; height: number },
  minScale: number,
): { rule: ResizeRule; note: string } {
  const full = fittedSize(size.width, size.height, view.rule);
  const minLongSide = Math.max(1, Math.ceil(minScale * Math.max(full.width, full.height)));
  const fit = ruleWithinTokens(profile, size.width, size.height, view.rule, req.detail, budget, minLongSide);
  if (!fit) {
    const floor =
      minScale > 0 ? ` without making this text image smaller than ${minScale} of its size, where OCR stops keeping the target` : '';
    throw new HttpError(
      422,
      'token_budget_too_small',
      `max_image_tokens ${budget} is below what profile ${profile} bills for this image${floor}`,
      {
        maxImageTokens: budget,
        profile,
        ...(minScale > 0 ? { minScale } : {}),
      },
    );
  }
  if (fit.rule === view.rule) return { rule: view.rule, note: `${view.note} (${fit.tokens ?? 'unknown'} tokens, within ${budget})` };
  return {
    rule: fit.rule,
    note: `${view.note}, then long side ${fit.rule.maxLongSide} to stay within ${budget} image tokens (${fit.tokens})`,
  };
}

/** The decision in one header value: `policy; class=text; target=0.98; quality=6.5` (the full reason is in JSON bodies). */
export function policyHeader(d: PolicyDecision): string {
  return [
    d.source,
    `class=${d.taskClass}`,
    ...(d.codec !== DEFAULT_CODEC ? [`codec=${d.codec}`] : []),
    ...(d.target ? [`target=${d.target}`] : []),
    `quality=${d.quality}`,
    ...(d.maxBytes !== undefined ? [`max_bytes=${d.maxBytes}`] : []),
    // the closed loop found nothing that keeps the target: the client's image goes
    ...(d.sendOriginal ? ['upstream=client'] : []),
  ].join('; ');
}

/** Whether the decision needs image statistics: the request leaves the task class to the image (no
 * quality, hint or cue in words), or its words say text, where whether the image is rendered picks the encoder. */
export function needsImageStats(req: PolicyRequest): boolean {
  if (req.quality !== undefined) return false;
  const { taskClass } = classifyTask({ task: req.task, prompt: req.prompt });
  return taskClass === 'text' || (taskClass === 'general' && !req.task);
}
