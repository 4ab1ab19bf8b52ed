/** Reading a client's policy fields (quality, max_bytes, task, target, prompt) with clear 400s for bad values. */
import { HttpError } from '../http/http-error.js';
import type { PolicyRequest } from './policy.js';
import { TASK_HINTS } from './task-classifier.js';

export const PROMPT_MAX_LENGTH = 100_000;

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

/** quality / max_bytes / task / target / prompt from form fields, a JSON body or proxy options. */
export function policyRequest(fields: Record<string, unknown>, levels: number, targets: string[]): PolicyRequest {
  const req: PolicyRequest = {};
  const quality = parseNumber('quality', fields['quality'], false, 1, levels);
  const maxBytes = parseNumber('max_bytes', fields['max_bytes'], true, 1, Number.MAX_SAFE_INTEGER);
  const task = parseText('task', fields['task'], 64);
  const prompt = parseText('prompt', fields['prompt'], PROMPT_MAX_LENGTH);
  if (quality !== undefined) req.quality = quality;
  if (maxBytes !== undefined) req.maxBytes = maxBytes;
  if (task !== undefined) {
    if (!TASK_HINTS.includes(task.toLowerCase()))
      throw new HttpError(400, 'invalid_request', `task must be one of ${TASK_HINTS.join(', ')}`);
    req.task = task;
  }
  const target = fields['target'];
  if (target !== undefined && target !== null && target !== '') {
    // Accept 0.98, "0.98" or "98%"; the table's targets are the only meaningful values.
    const t =
      typeof target === 'number'
        ? target
        : typeof target === 'string'
          ? target.trim().endsWith('%')
            ? Number(target.trim().slice(0, -1)) / 100
            : Number(target)
          : NaN;
    const match = targets.find((x) => Math.abs(Number(x) - t) < 1e-9);
    if (!match) throw new HttpError(400, 'invalid_request', `target must be one of ${targets.join(', ')}`);
    req.target = match;
  }
  if (prompt !== undefined) req.prompt = prompt;
  return req;
}
