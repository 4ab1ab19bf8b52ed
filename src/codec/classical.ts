/**
 * The standard image file inside a bitstream, for backends that read its format: the proxy forwards
 * it as it is instead of a re-encoded copy. Which kinds hold a file is the kind table's `payload`.
 */
import { Flags, parseContainer } from './container.js';
import type { PayloadFormat } from './kinds/names.js';
import { kindByCode } from './kinds/table.js';

/**
 * The AVIF, WebP or JPEG file inside a bitstream, exactly as the encoder made it (framing and CRC
 * checked), when that file is the reconstruction itself. Null for kinds that store no file and for
 * semantic AVIF that is decoded through a restoration network.
 */
export function classicalPayload(bitstream: Uint8Array): { codec: PayloadFormat; file: Uint8Array; width: number; height: number } | null {
  const c = parseContainer(bitstream);
  const codec = kindByCode(c.codec).payload;
  if (!codec || c.flags & Flags.Restoration) return null;
  return { codec, file: c.latent, width: c.width, height: c.height };
}
