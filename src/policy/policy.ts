/**
 * The per-request encoding decision. Until the calibrated policy (rate-accuracy curves per task
 * class and backend profile) lands, the rules are: an explicit quality wins; a byte budget picks the
 * highest quality that fits; otherwise the documented default (VLMPRESS_DEFAULT_QUALITY). Images are
 * downscaled so their longer side is at most VLMPRESS_MAX_SIDE. The decision and its reason are
 * returned to the client.
 */
import type { GatewayConfig, ResolutionProfile } from '../server/config.js';

export interface PolicyRequest {
  quality?: number;
  maxBytes?: number;
  /** a task hint from the client (general, ocr, detail, ...) */
  task?: string;
  prompt?: string;
  /** the resolution profile of the backend the image goes to (proxy requests) */
  profile?: ResolutionProfile;
}

export interface PolicyDecision {
  quality: number;
  maxBytes?: number;
  maxSide: number;
  source: 'request' | 'budget' | 'default';
  profile: ResolutionProfile;
  task?: string;
  reason: string;
}

export function decidePolicy(config: GatewayConfig, req: PolicyRequest): PolicyDecision {
  const profile = req.profile ?? 'none';
  const base = { maxSide: config.maxSide, profile, ...(req.task ? { task: req.task } : {}) };
  if (req.maxBytes !== undefined) {
    // The budget search starts from the requested quality (or the top level) and walks down.
    return { ...base, quality: req.quality ?? 8, maxBytes: req.maxBytes, source: 'budget', reason: `highest quality within ${req.maxBytes} bytes` };
  }
  if (req.quality !== undefined) return { ...base, quality: req.quality, source: 'request', reason: 'quality set by the request' };
  return { ...base, quality: config.defaultQuality, source: 'default', reason: 'gateway default quality (VLMPRESS_DEFAULT_QUALITY)' };
}
