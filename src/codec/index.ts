/** The codec runtime's public surface: the gateway and the CLI import from here only. */
export { Codec, BUNDLED_MODELS_DIR, CODEC_CHOICES, describeEditors, describeModels, findModelDirs, SEMANTIC_AVIF } from './codec.js';
export type { BitstreamInfo, CodecChoice, CodecOptions, DecodeOptions, EditorSummary, EncodeOptions, EncodeResult } from './codec.js';
export { CodecError, CODEC_ERROR_CODES, isCodecError, stopPoint, WorkStoppedError } from './errors.js';
export type { StopCheck } from './errors.js';
export { bitstreamCodec, CLASSICAL_CODECS, classicalPayload, codecPayloadFormat } from './classical.js';
export type { ClassicalCodec, PayloadFormat } from './classical.js';
export { avifencAvailable, DEFAULT_AVIFENC } from './avifenc.js';
export type { CodecErrorCode } from './errors.js';
export {
  decodeImage,
  downscale,
  encodeImage,
  fittedSize,
  imageSize,
  outputFormatFromName,
  DEFAULT_MAX_PIXELS,
  INPUT_FORMATS,
  OUTPUT_FORMATS,
  OUTPUT_MIME,
} from './image-io.js';
export type { DecodedInput, InputFormat, OutputFormat, ResizeRule, RgbImage } from './image-io.js';
export { looksLikeContainer, MAGIC, CONTAINER_VERSION, Flags } from './container.js';
export { installedProviders, parseProviderList } from './execution-providers.js';
export type { ExecutionProviderName } from './execution-providers.js';
export type { GraphOptimizationLevel, SessionSettings } from './model-package.js';
