/** The codec runtime's public surface: the gateway and the CLI import from here only. */
export { Codec } from './codec.js';
export type { BitstreamInfo, CodecOptions, DecodeOptions, EncodeOptions, EncodeResult } from './codec.js';
export { BUNDLED_MODELS_DIR, describeEditors, describeModels, findModelDirs } from './packages.js';
export type { EditorSummary } from './packages.js';
export { KIND_NAMES } from './kinds/names.js';
export type { CodecChoice, PayloadFormat } from './kinds/names.js';
export type { QualityScale } from './kinds/kind.js';
export {
  bitstreamCodec,
  CODEC_CHOICES,
  codecPayloadFormat,
  DEFAULT_CODEC,
  describeKinds,
  HARNESS_CODECS,
  harnessCodec,
  isCodecChoice,
  kindPackage,
  qualityRange,
  qualityScale,
} from './kinds/table.js';
export { CodecError, CODEC_ERROR_CODES, isCodecError, stopPoint, WorkStoppedError } from './errors.js';
export type { StopCheck } from './errors.js';
export { classicalPayload } from './classical.js';
export { avifencAvailable, DEFAULT_AVIFENC } from './kinds/avif-screen.js';
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
