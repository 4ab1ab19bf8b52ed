/**
 * What goes to the LVLM backend in place of a client's image, decided in one place for the proxy
 * (which sends it) and /compress (which reports it when asked, for the inspector page).
 */
import type { CompressedImage, ReconstructionFile } from './image-service.js';
import { openaiDialect } from '../lvlm-proxy/apis/openai.js';

export interface UpstreamImage {
  /** the stored file itself, the reconstruction's copy, the client's image downscaled, or as it came */
  kind: 'stored' | 'reconstruction' | 'client_resized' | 'client';
  format: string;
  /** null for `client`: the client's own bytes go (the caller holds them) */
  bytes: Uint8Array | null;
  byteLength: number;
  width: number;
  height: number;
  /** why the client's image goes instead of the stored image (absent otherwise) */
  why?: string;
}

/**
 * Never more bytes upstream than the client sent: the stored file (when the backend reads its format)
 * or the reconstruction's copy when that is not larger, else the client's image downscaled to the
 * backend's view when that is smaller, else the client's image as it came (when the APIs take its
 * format: `formats`, the API's table; /compress reports against OpenAI's). `compressed` must come from compressImage with `reconstruction:
 * file` and `upstreamLimit`.
 */
export function upstreamImage(
  compressed: CompressedImage,
  clientBytes: number,
  file: ReconstructionFile,
  formats: ReadonlySet<string> = openaiDialect.formats,
): UpstreamImage {
  const { payload, reconstruction, clientCopy } = compressed;
  const source = compressed.stored.meta.source;
  const sent = payload
    ? { kind: 'stored' as const, format: payload.codec, bytes: payload.file, width: payload.width, height: payload.height }
    : {
        kind: 'reconstruction' as const,
        format: file.format,
        bytes: reconstruction!.image,
        width: reconstruction!.width,
        height: reconstruction!.height,
      };
  /** The client's own bytes go (the caller holds them). */
  const asSent = (why: string): UpstreamImage => ({
    kind: 'client',
    format: source.format,
    bytes: null,
    byteLength: clientBytes,
    width: source.width,
    height: source.height,
    why: `the client's image as sent, ${why}`,
  });
  if (compressed.decision.sendOriginal) return asSent("no quality keeps the target on this backend's shadow verdicts");
  if (sent.bytes.length <= clientBytes || !formats.has(source.format)) return { ...sent, byteLength: sent.bytes.length };
  const why = `the ${sent.kind === 'stored' ? 'stored file' : 'reconstruction'} as ${sent.format} (${sent.bytes.length} B) is larger than the ${clientBytes} B sent`;
  if (clientCopy) {
    return {
      kind: 'client_resized',
      format: clientCopy.format,
      bytes: clientCopy.image,
      byteLength: clientCopy.image.length,
      width: clientCopy.width,
      height: clientCopy.height,
      why: `the client's image downscaled, ${why}`,
    };
  }
  return asSent(why);
}
