/** Reading a client's policy fields (quality, max_bytes, task, prompt) with clear 400s for bad values. */
import { HttpError } from '../server/errors.js';
import type { PolicyRequest } from './policy.js';

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
  if (typeof raw !== 'string' || raw.length > maxLength) throw new HttpError(400, 'invalid_request', `${name} must be a string of at most ${maxLength} characters`);
  return raw;
}

/** quality / max_bytes / task / prompt from form fields, a JSON body or proxy options. */
export function policyRequest(fields: Record<string, unknown>, levels: number): PolicyRequest {
  const req: PolicyRequest = {};
  const quality = parseNumber('quality', fields['quality'], false, 1, levels);
  const maxBytes = parseNumber('max_bytes', fields['max_bytes'], true, 1, Number.MAX_SAFE_INTEGER);
  const task = parseText('task', fields['task'], 64);
  const prompt = parseText('prompt', fields['prompt'], 100_000);
  if (quality !== undefined) req.quality = quality;
  if (maxBytes !== undefined) req.maxBytes = maxBytes;
  if (task !== undefined) req.task = task;
  if (prompt !== undefined) req.prompt = prompt;
  return req;
}
