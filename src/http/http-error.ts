/**
 * The error an HTTP handler throws for something the client can fix (a status and a machine-readable
 * code), and the status each codec error maps to. Shared by the routes, the proxy and the policy's
 * request parsing; the app's error handler (src/server/errors.ts) turns both into responses.
 */
import type { CodecErrorCode } from '../codec/index.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

const CODEC_STATUS: Partial<Record<CodecErrorCode, number>> = {
  image_too_large: 413,
  unsupported_image_format: 415,
  budget_too_small: 422,
  unknown_model: 422,
  bad_model_package: 500,
};

export function codecErrorStatus(code: CodecErrorCode): number {
  return CODEC_STATUS[code] ?? 400;
}
