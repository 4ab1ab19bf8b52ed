/**
 * What each backend's vision encoder actually looks at, so the gateway never spends bits above it.
 * Published limits (provider documentation, model configs):
 * - openai: `detail: low` is one 512x512 view; `high` (and `auto`, conservatively) fits the image in
 *   2048x2048, then scales its short side to 768 before cutting 512-px tiles;
 * - anthropic: long edge above 1568 px, or more than about 1.15 megapixels, is downscaled first;
 * - gemini: images above 3072x3072 are scaled down to fit; the rest is cut into crops of at most
 *   768 px, so it sees everything up to that size (and bills it: src/policy/tokens.ts);
 * - qwen2-vl: 28-px patches up to a max-pixels budget (1280 x 28 x 28 in common serving setups);
 * - llava (1.5): one 336x336 view;
 * - none: only the gateway's VLMPRESS_MAX_SIDE.
 */
import type { ResizeRule } from '../codec/index.js';

/** what a backend's vision encoder sees; the policy downscales to it before encoding */
export const RESOLUTION_PROFILES = ['none', 'openai', 'anthropic', 'gemini', 'qwen2-vl', 'llava'] as const;
export type ResolutionProfile = (typeof RESOLUTION_PROFILES)[number];

export const IMAGE_DETAILS = ['low', 'high', 'auto'] as const;
export type ImageDetail = (typeof IMAGE_DETAILS)[number];

export function resizeRuleFor(
  profile: ResolutionProfile,
  detail: ImageDetail | undefined,
  maxSide: number,
): { rule: ResizeRule; note: string } {
  const cap = (r: ResizeRule): ResizeRule => ({ ...r, maxLongSide: Math.min(r.maxLongSide, maxSide) });
  switch (profile) {
    case 'openai':
      return detail === 'low'
        ? { rule: cap({ maxLongSide: 512 }), note: 'openai detail=low sees 512x512' }
        : { rule: cap({ maxLongSide: 2048, maxShortSide: 768 }), note: `openai detail=${detail ?? 'auto'} fits 2048x2048, short side 768` };
    case 'anthropic':
      return { rule: cap({ maxLongSide: 1568, maxPixels: 1_150_000 }), note: 'anthropic: long edge 1568, about 1.15 MP' };
    case 'gemini':
      return { rule: cap({ maxLongSide: 3072 }), note: 'gemini fits 3072x3072' };
    case 'qwen2-vl':
      return { rule: cap({ maxLongSide: 16384, maxPixels: 1280 * 28 * 28 }), note: 'qwen2-vl: max_pixels 1280x28x28' };
    case 'llava':
      return { rule: cap({ maxLongSide: 336 }), note: 'llava-1.5 sees 336x336' };
    case 'none':
      return { rule: { maxLongSide: maxSide }, note: `VLMPRESS_MAX_SIDE ${maxSide}` };
  }
}
