/**
 * Schemas shared by the route definitions. Request schemas validate (server/openapi.ts: no coercion,
 * nothing removed, so the proxy forwards exactly what it was sent); response schemas document.
 */
import { DEFAULT_CODEC, qualityRange } from '../codec/index.js';
import { PROMPT_MAX_LENGTH, REQUEST_CODECS } from '../policy/request-fields.js';
import { TASK_HINTS } from '../policy/task-classifier.js';
import { IMAGE_DETAILS, RESOLUTION_PROFILES } from '../policy/resolution.js';

export const errorResponse = {
  description: 'error',
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'string', description: 'machine-readable, e.g. bad_image, image_url_blocked' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
      required: ['code', 'message'],
    },
  },
} as const;

export const errors = { '4xx': errorResponse, '5xx': errorResponse } as const;

/** A proxy route's answers: the upstream's, unchanged, and the gateway's errors in the route's shape. */
export const proxyAnswer = (errorSchemas: Record<string, unknown>) => ({
  200: {
    description: 'the upstream answer, unchanged (application/json or a stream: text/event-stream, or JSON written piece by piece)',
    type: 'object',
    additionalProperties: true,
  },
  ...errorSchemas,
});

/** The x-vlmpress-* request headers, listed for the proxy routes' descriptions. */
export const settingHeadersDoc = () => REQUEST_SETTINGS.map((f) => '`' + settingHeader(f) + '`').join(', ');

/** The Anthropic Messages routes' errors: Anthropic's shape, the gateway's code beside its type. */
const anthropicErrorResponse = {
  description: 'error (Anthropic shape)',
  type: 'object',
  properties: {
    type: { type: 'string', enum: ['error'] },
    error: {
      type: 'object',
      properties: {
        type: { type: 'string', description: 'invalid_request_error, authentication_error, not_found_error, overloaded_error, ...' },
        message: { type: 'string' },
        code: { type: 'string', description: 'the gateway’s machine-readable code, e.g. bad_image, wrong_api' },
        details: { type: 'object', additionalProperties: true },
      },
      required: ['type', 'message'],
    },
  },
} as const;
export const anthropicErrors = { '4xx': anthropicErrorResponse, '5xx': anthropicErrorResponse } as const;

/** The Gemini routes' errors: Google's shape, the gateway's code as the reason of an ErrorInfo detail. */
const geminiErrorResponse = {
  description: 'error (Google API shape)',
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        code: { type: 'integer', description: 'the HTTP status' },
        message: { type: 'string' },
        status: { type: 'string', description: 'INVALID_ARGUMENT, UNAUTHENTICATED, NOT_FOUND, UNAVAILABLE, ...' },
        details: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              '@type': { type: 'string' },
              reason: { type: 'string', description: 'the gateway’s code in upper case, e.g. BAD_IMAGE' },
              domain: { type: 'string' },
              metadata: { type: 'object', additionalProperties: { type: 'string' } },
            },
          },
        },
      },
      required: ['code', 'message', 'status'],
    },
  },
} as const;
export const geminiErrors = { '4xx': geminiErrorResponse, '5xx': geminiErrorResponse } as const;

/**
 * Route-schema key of request bodies that are documented but not validated, by content type: a
 * multipart form (streamed by its route) and binary bodies (Buffers, which JSON Schema cannot
 * describe). server/openapi.ts adds them to the OpenAPI body.
 */
export const BODY_DOCS = 'x-body-docs';

declare module 'fastify' {
  interface FastifySchema {
    'x-body-docs'?: Record<string, unknown>;
  }
}

export const binaryBody = { type: 'string', format: 'binary' } as const;

/** The per-request settings a client may give: /compress fields, the proxy's `vlmpress` body object, and its x-vlmpress-* headers. */
export const REQUEST_SETTINGS = ['codec', 'quality', 'max_bytes', 'max_image_tokens', 'task', 'target'] as const;
export type RequestSetting = (typeof REQUEST_SETTINGS)[number];

/** `max_bytes` travels as the header `x-vlmpress-max-bytes`. */
export function settingHeader(field: RequestSetting): string {
  return `x-vlmpress-${field.replaceAll('_', '-')}`;
}

/**
 * The schemas of the policy fields, from the constants the code uses: the model's quality levels and
 * the task hints. Numbers may also come as numeric strings (form fields, headers, loose JSON clients);
 * those are checked by policyRequest with the same limits.
 */
export function policyFields(levels: number) {
  const ranges = REQUEST_CODECS.map((name) => ({ name, ...qualityRange(name, levels) }));
  const scales = ranges.map((r) => `${r.name} ${r.min} (smallest) to ${r.max}${r.integer ? ', integers' : ', fractional values allowed'}`);
  return {
    codec: {
      type: 'string',
      enum: REQUEST_CODECS,
      description: `the codec of \`quality\`: ${DEFAULT_CODEC} (the default) or ${REQUEST_CODECS.filter((c) => c !== DEFAULT_CODEC).join(', ')} (GET /policy: \`codecs\` describes each); the answer reports both, so they can be sent back as they came`,
    },
    quality: {
      type: ['number', 'string'],
      minimum: Math.min(...ranges.map((r) => r.min)),
      maximum: Math.max(...ranges.map((r) => r.max)),
      description: `quality on the codec's own scale: ${scales.join('; ')}`,
    },
    max_bytes: { type: ['integer', 'string'], minimum: 1, description: 'byte budget: the highest quality whose bitstream fits' },
    max_image_tokens: {
      type: ['integer', 'string'],
      minimum: 1,
      description: "image-token budget per image, by the backend profile's billing rule: the largest size within it",
    },
    task: { type: 'string', maxLength: 64, description: `task hint for the policy: ${TASK_HINTS.join(', ')}` },
    prompt: { type: 'string', maxLength: PROMPT_MAX_LENGTH, description: 'the prompt the image goes with (policy hint)' },
    target: {
      type: ['number', 'string'],
      description:
        'target of the policy table: task accuracy kept relative to the original, e.g. 0.95, "0.98" or "99%"; or the strict share of the original\'s predictions kept, "agreement:0.98"',
    },
  } as const;
}

/** The backend view an image is encoded for, on /compress and /policy/decision (the proxy takes it from its backend). */
export const viewFields = {
  profile: {
    type: 'string',
    enum: RESOLUTION_PROFILES,
    description: 'resolution profile of the backend the image is meant for: it is downscaled to what that backend sees',
  },
  detail: { type: 'string', enum: IMAGE_DETAILS, description: 'OpenAI image `detail` (profile openai)' },
} as const;

/** The proxy's `vlmpress` body object: exactly the request settings. */
export function vlmpressField(levels: number) {
  const fields = policyFields(levels);
  return {
    type: 'object',
    properties: Object.fromEntries(REQUEST_SETTINGS.map((f) => [f, fields[f]])),
    additionalProperties: false,
    description: 'vlmpress settings for this request (removed before forwarding)',
  } as const;
}

export const compressResult = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'SHA-256 of the bitstream (its content address)' },
    bytes: { type: 'integer' },
    bpp: { type: 'number' },
    codec: {
      type: 'string',
      description: 'the codec of `quality` (learned, avif, webp, jpeg, semantic-avif): send both back for the same encoding',
    },
    quality: { type: 'number', description: "on the codec's own scale" },
    width: { type: 'integer' },
    height: { type: 'integer' },
    model: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' } } },
    source: {
      type: 'object',
      properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, bytes: { type: 'integer' } },
    },
    policy: { type: 'object', additionalProperties: true, description: 'the quality decision and its reason' },
    tokens: {
      type: 'object',
      description: 'image tokens the backend profile bills (null: no known rule, profile none)',
      properties: {
        profile: { type: 'string' },
        original: { type: ['integer', 'null'], description: 'for the image as the client sent it' },
        encoded: { type: ['integer', 'null'], description: 'for the stored image (the size it was encoded at)' },
      },
    },
    upstream: {
      type: 'object',
      description: 'with `upstream`: what the proxy sends the backend in place of this image',
      properties: {
        what: { type: 'string', enum: ['stored', 'reconstruction', 'client_resized', 'client'] },
        format: { type: 'string' },
        bytes: { type: 'integer' },
        width: { type: 'integer' },
        height: { type: 'integer' },
        tokens: { type: ['integer', 'null'] },
      },
    },
    cached: { type: 'boolean', description: 'answered from the store without encoding' },
    timings: { type: 'object', additionalProperties: { type: 'number' } },
  },
} as const;

/** What POST /bitstreams answers: the /compress fields that describe a stored bitstream. */
export const storedResult = {
  type: 'object',
  properties: Object.fromEntries(
    (['id', 'bytes', 'bpp', 'codec', 'quality', 'width', 'height', 'model', 'upstream'] as const).map((k) => [
      k,
      compressResult.properties[k],
    ]),
  ),
} as const;

export const bitstreamId = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, required: ['id'] } as const;
export const formatQuery = {
  type: 'object',
  properties: { format: { type: 'string', enum: ['png', 'webp', 'jpeg', 'jpg'], default: 'png' } },
} as const;
