/**
 * Image tokens per profile against the examples the providers publish with their rules.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fittedSize } from '../../src/codec/index.js';
import { anthropicTokens, geminiTokens, imageTokens, openaiTokens, qwen2vlTokens, ruleWithinTokens } from '../../src/policy/tokens.js';

describe('image tokens', () => {
  it('openai: the vision pricing examples', () => {
    // 1024x1024 high: scaled to 768x768, four 512-px tiles.
    assert.equal(openaiTokens(1024, 1024, 'high'), 765);
    // 2048x4096 high: fitted to 1024x2048, then 768x1536, six tiles.
    assert.equal(openaiTokens(2048, 4096, 'high'), 1105);
    // detail low: 85 whatever the size.
    assert.equal(openaiTokens(4096, 8192, 'low'), 85);
    // a small image is not scaled up: one tile.
    assert.equal(openaiTokens(500, 500, 'high'), 255);
    assert.equal(openaiTokens(513, 500, 'auto'), 425);
  });

  it('anthropic: width x height / 750, the table of sizes that are not resized', () => {
    assert.equal(anthropicTokens(200, 200), 54);
    assert.equal(anthropicTokens(1000, 1000), 1334);
    assert.equal(anthropicTokens(1092, 1092), 1590);
    // Larger images are scaled to about 1,600 tokens, and to a 1568-px long edge.
    assert.ok(Math.abs(anthropicTokens(4000, 3000) - 1600) <= 2);
    assert.ok(anthropicTokens(4000, 200) <= Math.ceil((1568 * 78) / 750));
  });

  it('gemini: 258 up to 384x384, else 258 per square crop of the short side / 1.5 (256 to 768 px)', () => {
    assert.equal(geminiTokens(384, 384), 258);
    assert.equal(geminiTokens(200, 380), 258);
    // 960x540: crops of 360 px, 3 x 2 of them.
    assert.equal(geminiTokens(960, 540), 6 * 258);
    // 1024x1024: crops of 682 px, 2 x 2.
    assert.equal(geminiTokens(1024, 1024), 4 * 258);
    // Crops never exceed 768 px: a 3072x3072 image is 4 x 4 of them.
    assert.equal(geminiTokens(3072, 3072), 16 * 258);
  });

  it('qwen2-vl: one token per 28x28 patch, within the pixel budget', () => {
    assert.equal(qwen2vlTokens(224, 224), 64);
    assert.equal(qwen2vlTokens(448, 448), 256);
    // Above max_pixels (1280 patches) the image is scaled down to fit.
    assert.ok(qwen2vlTokens(4000, 3000) <= 1280);
    assert.ok(qwen2vlTokens(4000, 3000) >= 1200);
    // Tiny images are scaled up to the minimum of four patches.
    assert.equal(qwen2vlTokens(20, 20), 4);
  });

  it('by profile', () => {
    assert.equal(imageTokens('llava', 4000, 3000), 576);
    assert.equal(imageTokens('none', 4000, 3000), null);
    assert.equal(imageTokens('openai', 1024, 1024, 'low'), 85);
    assert.equal(imageTokens('gemini', 960, 540), 1548);
  });

  it('a token budget lowers the long side to the largest size within it', () => {
    const view = { maxLongSide: 2048, maxShortSide: 768 };
    // 3000x2000 under OpenAI high: 1152x768, 6 tiles, 1105 tokens; within 500: two tiles (425).
    const fit = ruleWithinTokens('openai', 3000, 2000, view, 'high', 500)!;
    const size = fittedSize(3000, 2000, fit.rule);
    assert.equal(fit.tokens, 425);
    assert.equal(openaiTokens(size.width, size.height, 'high'), 425);
    // One pixel more on the long side would cost more than the budget.
    const bigger = fittedSize(3000, 2000, { ...fit.rule, maxLongSide: fit.rule.maxLongSide + 1 });
    assert.ok(openaiTokens(bigger.width, bigger.height, 'high') > 500);
    // Already within: the rule unchanged.
    assert.equal(ruleWithinTokens('openai', 3000, 2000, view, 'high', 2000)!.rule, view);
    // Below the fixed cost of any image: impossible.
    assert.equal(ruleWithinTokens('openai', 3000, 2000, view, 'high', 84), null);
    // Qwen2-VL, 1.2 MP photo within 256 tokens.
    const q = ruleWithinTokens('qwen2-vl', 1200, 1000, { maxLongSide: 16384, maxPixels: 1280 * 28 * 28 }, undefined, 256)!;
    assert.ok(q.tokens! <= 256 && q.tokens! > 200, String(q.tokens));
  });
});
