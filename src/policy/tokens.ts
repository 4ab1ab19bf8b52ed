/**
 * The image tokens a backend bills for an image of a given size, by resolution profile, from the
 * providers' published rules. What users pay most for is tokens, and they depend only on the
 * resolution the backend ends up looking at, never on the bytes.
 * - openai (GPT-4o family): `detail: low` is 85 tokens; otherwise the image is fitted into 2048x2048,
 *   its short side scaled down to 768, and it costs 85 + 170 per 512-px tile;
 * - anthropic: fitted to a 1568-px long edge and about 1,600 tokens, then width x height / 750;
 * - gemini (2.0 rule): 258 tokens when both sides are at most 384 px; otherwise the image is cut into
 *   square crops whose side is the short side / 1.5 (between 256 and 768 px), each scaled to 768x768
 *   and billed 258 tokens;
 * - qwen2-vl: one token per 28x28 patch after rounding each side to a multiple of 28 within the
 *   max-pixels budget (the vision start/end markers are not counted);
 * - llava (1.5): always 24x24 = 576 patches of its 336x336 view;
 * - none: unknown (null).
 */
import { fittedSize, type ResizeRule } from '../codec/index.js';
import type { ImageDetail, ResolutionProfile } from './resolution.js';

/** Scales (w, h) down, never up, by the largest factor that keeps both under the limits. */
function fit(w: number, h: number, scale: number): [number, number] {
  if (scale >= 1) return [w, h];
  return [Math.max(1, Math.floor(w * scale)), Math.max(1, Math.floor(h * scale))];
}

export function openaiTokens(width: number, height: number, detail: ImageDetail | undefined): number {
  if (detail === 'low') return 85;
  let [w, h] = fit(width, height, 2048 / Math.max(width, height));
  [w, h] = fit(w, h, 768 / Math.min(w, h));
  return 85 + 170 * Math.ceil(w / 512) * Math.ceil(h / 512);
}

export function anthropicTokens(width: number, height: number): number {
  const [w, h] = fit(width, height, Math.min(1568 / Math.max(width, height), Math.sqrt((1600 * 750) / (width * height))));
  return Math.ceil((w * h) / 750);
}

export function geminiTokens(width: number, height: number): number {
  if (width <= 384 && height <= 384) return 258;
  const crop = Math.min(768, Math.max(256, Math.floor(Math.min(width, height) / 1.5)));
  return 258 * Math.ceil(width / crop) * Math.ceil(height / crop);
}

/** Qwen2-VL's smart resize: each side a multiple of 28, the area within [min, max] pixels. */
export function qwen2vlTokens(width: number, height: number, maxPixels = 1280 * 28 * 28, minPixels = 4 * 28 * 28): number {
  let w = Math.max(28, Math.round(width / 28) * 28);
  let h = Math.max(28, Math.round(height / 28) * 28);
  if (w * h > maxPixels) {
    const beta = Math.sqrt((width * height) / maxPixels);
    w = Math.max(28, Math.floor(width / beta / 28) * 28);
    h = Math.max(28, Math.floor(height / beta / 28) * 28);
  } else if (w * h < minPixels) {
    const beta = Math.sqrt(minPixels / (width * height));
    w = Math.ceil((width * beta) / 28) * 28;
    h = Math.ceil((height * beta) / 28) * 28;
  }
  return (w / 28) * (h / 28);
}

export function imageTokens(profile: ResolutionProfile, width: number, height: number, detail?: ImageDetail): number | null {
  switch (profile) {
    case 'openai':
      return openaiTokens(width, height, detail);
    case 'anthropic':
      return anthropicTokens(width, height);
    case 'gemini':
      return geminiTokens(width, height);
    case 'qwen2-vl':
      return qwen2vlTokens(width, height);
    case 'llava':
      return 576;
    case 'none':
      return null;
  }
}

/**
 * The largest view of a width x height image, no larger than `rule` allows, that the profile bills at
 * most `budget` tokens for: `rule` with its long side lowered as far as needed (the token count only
 * grows with the size), never below `minLongSide`. Null when even that costs more (e.g. a budget below
 * the profile's fixed cost, 85 for OpenAI).
 */
export function ruleWithinTokens(
  profile: ResolutionProfile,
  width: number,
  height: number,
  rule: ResizeRule,
  detail: ImageDetail | undefined,
  budget: number,
  minLongSide = 1,
): { rule: ResizeRule; tokens: number | null } | null {
  const cost = (long: number) => {
    const size = fittedSize(width, height, { ...rule, maxLongSide: long });
    return imageTokens(profile, size.width, size.height, detail);
  };
  const fitted = fittedSize(width, height, rule);
  const full = Math.max(fitted.width, fitted.height);
  const atFull = cost(full);
  if (atFull === null || atFull <= budget) return { rule, tokens: atFull };
  if (minLongSide >= full || (cost(minLongSide) ?? 0) > budget) return null;
  let lo = minLongSide;
  let hi = full; // cost(lo) <= budget < cost(hi)
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((cost(mid) ?? 0) <= budget) lo = mid;
    else hi = mid;
  }
  return { rule: { ...rule, maxLongSide: lo }, tokens: cost(lo) };
}
