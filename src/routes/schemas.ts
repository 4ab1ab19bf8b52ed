/** OpenAPI fragments shared by the route definitions (documentation; see server/openapi.ts). */

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

export const policyFields = {
  quality: { type: 'number', minimum: 1, maximum: 8, description: 'codec quality (1 = smallest); fractional values allowed' },
  max_bytes: { type: 'integer', minimum: 1, description: 'byte budget: the highest quality whose bitstream fits' },
  task: { type: 'string', maxLength: 64, description: 'task hint for the policy (general, ocr, detail)' },
  prompt: { type: 'string', description: 'the prompt the image goes with (policy hint)' },
  target: {
    anyOf: [{ type: 'number' }, { type: 'string' }],
    description: 'accuracy target of the policy table, e.g. 0.95, "0.98" or "99%"',
  },
} as const;

export const compressResult = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'SHA-256 of the bitstream (its content address)' },
    bytes: { type: 'integer' },
    bpp: { type: 'number' },
    quality: { type: 'number' },
    width: { type: 'integer' },
    height: { type: 'integer' },
    model: { type: 'object', properties: { name: { type: 'string' }, id: { type: 'string' } } },
    source: {
      type: 'object',
      properties: { format: { type: 'string' }, width: { type: 'integer' }, height: { type: 'integer' }, bytes: { type: 'integer' } },
    },
    policy: { type: 'object', additionalProperties: true, description: 'the quality decision and its reason' },
    cached: { type: 'boolean', description: 'answered from the store without encoding' },
    timings: { type: 'object', additionalProperties: { type: 'number' } },
  },
} as const;

export const bitstreamId = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, required: ['id'] } as const;
export const formatQuery = {
  type: 'object',
  properties: { format: { type: 'string', enum: ['png', 'webp', 'jpeg', 'jpg'], default: 'png' } },
} as const;
