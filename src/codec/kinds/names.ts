/**
 * The name of every codec kind, as requests, answers, the CLI and the policy spell it. Each kind's
 * module (beside this file) takes its name from here, and everything outside src/codec/kinds/ refers
 * to a kind through these constants or the kind table, never by a string of its own. No imports:
 * the browser encoder (src/web) loads this module as it is.
 */
export const KIND_NAMES = {
  learned: 'learned',
  avif: 'avif',
  webp: 'webp',
  jpeg: 'jpeg',
  avifScreen: 'avif-screen',
  semanticAvif: 'semantic-avif',
} as const;

/** Every codec an encode may name. */
export type CodecChoice = (typeof KIND_NAMES)[keyof typeof KIND_NAMES];

/** The standard image files a bitstream's latent section may hold (the kinds that store one). */
export type PayloadFormat = 'avif' | 'webp' | 'jpeg';
