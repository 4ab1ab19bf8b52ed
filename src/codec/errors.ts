/**
 * Typed codec errors. Every failure the codec can meet on bad input has a stable, machine-readable
 * `code`; callers (the CLI, the gateway) map codes to exit statuses or HTTP 4xx statuses. Anything
 * that is not a CodecError is a bug in vlmpress, not bad input.
 */
export const CODEC_ERROR_CODES = [
  // bitstream container
  'bad_magic',
  'unsupported_version',
  'unsupported_codec',
  'unsupported_feature',
  'unknown_model',
  'bad_header',
  'truncated',
  'corrupt_payload',
  // images and arguments
  'bad_image',
  'unsupported_image_format',
  'image_too_large',
  'invalid_argument',
  'budget_too_small',
  // model packages (operator errors, found at start-up)
  'bad_model_package',
] as const;

export type CodecErrorCode = (typeof CODEC_ERROR_CODES)[number];

export class CodecError extends Error {
  readonly code: CodecErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: CodecErrorCode, message: string, details?: Record<string, unknown>) {
    super(message);
    this.name = 'CodecError';
    this.code = code;
    this.details = details;
  }
}

export function isCodecError(e: unknown): e is CodecError {
  return e instanceof CodecError;
}

/**
 * Says whether the work under way is still wanted. The codec asks it at its safe points (between
 * decoder tiles, between the stages of a chain, between the probes of a byte-budget search) and
 * stops there with a WorkStoppedError when it answers true. Whoever runs the codec decides why
 * (a deadline, a caller gone); the codec knows nothing of jobs or clocks.
 */
export type StopCheck = () => boolean;

/** The work was stopped at a safe point because its StopCheck said so: not bad input, not a bug. */
export class WorkStoppedError extends Error {
  constructor() {
    super('the work was stopped: nobody waits for its result any more');
    this.name = 'WorkStoppedError';
  }
}

/** Throws WorkStoppedError when `stop` says the work is no longer wanted. */
export function stopPoint(stop: StopCheck | undefined): void {
  if (stop?.()) throw new WorkStoppedError();
}
