/** Reading a client's policy fields (quality, max_bytes, task, target, prompt) with clear 400s for bad values. */
import { CODEC_CHOICES, DEFAULT_CODEC, isCodecChoice, qualityRange } from '../codec/index.js';
import { HttpError } from '../http/http-error.js';
import type { PolicyRequest } from './policy.js';
import { parseTarget } from './policy-table.js';
import { TASK_HINTS } from './task-classifier.js';
import { IMAGE_DETAILS, RESOLUTION_PROFILES, type ImageDetail, type ResolutionProfile } from './resolution.js';

export const PROMPT_MAX_LENGTH = 100_000;
/** The codecs a request may name for its `quality`: every kind of the codec table. */
export const REQUEST_CODECS = CODEC_CHOICES;

export function parseNumber(name: string, raw: unknown, integer: boolean, min: number, max: number): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const v = typeof raw === 'number' ? raw : typeof raw === 'string' ? Number(raw) : NaN;
  if (!Number.isFinite(v) || (integer && !Number.isSafeInteger(v)) || v < min || v > max) {
    throw new HttpError(400, 'invalid_request', `${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

export function parseText(name: string, raw: unknown, maxLength: number): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > maxLength)
    throw new HttpError(400, 'invalid_request', `${name} must be a string of at most ${maxLength} characters`);
  return raw;
}

/** codec / quality / max_bytes / task / target / prompt from form fields, a JSON body or proxy options. */
export function policyRequest(fields: Record<string, unknown>, levels: number, targets: string[]): PolicyRequest {
  const req: PolicyRequest = {};
  // Quality is on the named codec's own scale, so what an answer reports can be sent back as it is.
  const codec = parseText('codec', fields['codec'], 16);
  if (codec !== undefined && !isCodecChoice(codec))
    throw new HttpError(400, 'invalid_request', `codec must be one of ${REQUEST_CODECS.join(', ')}`);
  const range = qualityRange(codec ?? DEFAULT_CODEC, levels);
  const quality = parseNumber(
    codec === undefined || codec === DEFAULT_CODEC
      ? `quality for the ${DEFAULT_CODEC} codec (or name codec ${REQUEST_CODECS.filter((c) => c !== DEFAULT_CODEC).join('/')})`
      : `quality for codec ${codec}`,
    fields['quality'],
    range.integer,
    range.min,
    range.max,
  );
  if (codec !== undefined && quality === undefined)
    throw new HttpError(
      400,
      'invalid_request',
      `codec ${codec} needs a quality (${range.integer ? `an integer from ${range.min} to ${range.max}` : `${range.min} to ${range.max}`}); without codec and quality the policy chooses both`,
    );
  if (codec !== undefined) req.codec = codec;
  const maxBytes = parseNumber('max_bytes', fields['max_bytes'], true, 1, Number.MAX_SAFE_INTEGER);
  const maxImageTokens = parseNumber('max_image_tokens', fields['max_image_tokens'], true, 1, 1_000_000);
  const task = parseText('task', fields['task'], 64);
  const prompt = parseText('prompt', fields['prompt'], PROMPT_MAX_LENGTH);
  if (quality !== undefined) req.quality = quality;
  if (maxBytes !== undefined) req.maxBytes = maxBytes;
  if (maxImageTokens !== undefined) req.maxImageTokens = maxImageTokens;
  if (task !== undefined) {
    if (!TASK_HINTS.includes(task.toLowerCase()))
      throw new HttpError(400, 'invalid_request', `task must be one of ${TASK_HINTS.join(', ')}`);
    req.task = task;
  }
  const target = fields['target'];
  if (target !== undefined && target !== null && target !== '') {
    // Accept 0.98, "0.98" or "98%" (task accuracy kept), "agreement:0.98" or "agreement:98%" (the
    // share of the original's predictions kept); the table's targets are the only meaningful values.
    const text = typeof target === 'number' ? String(target) : typeof target === 'string' ? target.trim() : '';
    const agreement = text.startsWith('agreement:');
    const number = agreement ? text.slice(10).trim() : text;
    const t = number.endsWith('%') ? Number(number.slice(0, -1)) / 100 : number ? Number(number) : NaN;
    const match = targets.find((x) => {
      const parsed = parseTarget(x);
      return parsed !== null && (parsed.measure === 'agreement') === agreement && Math.abs(parsed.value - t) < 1e-9;
    });
    if (!match) throw new HttpError(400, 'invalid_request', `target must be one of ${targets.join(', ')}`);
    req.target = match;
  }
  if (prompt !== undefined) req.prompt = prompt;
  return req;
}

/** `profile` and `detail` of /compress and /policy/decision: the backend view to encode for (the proxy takes them from its backend). */
export function viewRequest(fields: Record<string, unknown>): { profile?: ResolutionProfile; detail?: ImageDetail } {
  const out: { profile?: ResolutionProfile; detail?: ImageDetail } = {};
  const profile = parseText('profile', fields['profile'], 32);
  if (profile !== undefined) {
    if (!(RESOLUTION_PROFILES as readonly string[]).includes(profile))
      throw new HttpError(400, 'invalid_request', `profile must be one of ${RESOLUTION_PROFILES.join(', ')}`);
    out.profile = profile as ResolutionProfile;
  }
  const detail = parseText('detail', fields['detail'], 8);
  if (detail !== undefined) {
    if (!IMAGE_DETAILS.includes(detail as ImageDetail))
      throw new HttpError(400, 'invalid_request', `detail must be one of ${IMAGE_DETAILS.join(', ')}`);
    out.detail = detail as ImageDetail;
  }
  return out;
}

/** A yes/no form field: JSON true/false, or "true"/"false"/"1"/"0" from forms. */
export function parseFlag(name: string, raw: unknown): boolean {
  if (raw === undefined || raw === null || raw === '' || raw === false || raw === 'false' || raw === '0') return false;
  if (raw === true || raw === 'true' || raw === '1') return true;
  throw new HttpError(400, 'invalid_request', `${name} must be true or false`);
}
