/**
 * Image decoding and encoding with sharp (libvips). Inputs become 8-bit sRGB RGB pixels: EXIF
 * orientation applied, the first frame of animations, grayscale and 16-bit converted, alpha
 * flattened onto white (how documents and logos with transparency are usually meant to be seen,
 * and what a white-page LVLM prompt expects). A pixel limit is checked from the header before any
 * pixel is decoded, against decompression bombs.
 */
import sharp, { type Metadata } from 'sharp';
import { CodecError } from './errors.js';

export interface RgbImage {
  /** packed RGB, 8 bits per channel, row-major, width * height * 3 bytes */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DecodedInput extends RgbImage {
  /** container format sharp found: jpeg, png, webp, avif, gif, tiff */
  format: InputFormat;
  hadAlpha: boolean;
}

export const INPUT_FORMATS = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];
export const OUTPUT_FORMATS = ['png', 'webp', 'jpeg'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** 40 megapixels: above any LVLM's input resolution, well below what would exhaust memory. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

// libvips' own caches are not useful for one-shot request images and only hold memory.
sharp.cache(false);

export async function decodeImage(input: Uint8Array, maxPixels = DEFAULT_MAX_PIXELS): Promise<DecodedInput> {
  if (input.length === 0) throw new CodecError('bad_image', 'the image is empty');
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false, pages: 1 }).metadata();
  } catch (e) {
    throw new CodecError('bad_image', `the image could not be read (${(e as Error).message})`);
  }
  let format: InputFormat;
  if (meta.format === 'heif') {
    if (meta.compression !== 'av1')
      throw new CodecError(
        'unsupported_image_format',
        `HEIF with ${meta.compression ?? 'unknown'} compression is not supported (AVIF is)`,
        {
          format: 'heif',
          compression: meta.compression ?? 'unknown',
        },
      );
    format = 'avif';
  } else if ((INPUT_FORMATS as readonly string[]).includes(meta.format ?? '')) {
    format = meta.format as InputFormat;
  } else {
    throw new CodecError(
      'unsupported_image_format',
      `image format "${meta.format ?? 'unknown'}" is not supported (${INPUT_FORMATS.join(', ')})`,
      { format: meta.format ?? 'unknown' },
    );
  }
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  if (width < 1 || height < 1) throw new CodecError('bad_image', 'the image has no pixels');
  if (width * height > maxPixels) {
    throw new CodecError('image_too_large', `the image has ${width}x${height} = ${width * height} pixels, the limit is ${maxPixels}`, {
      width,
      height,
      maxPixels,
    });
  }
  try {
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels, pages: 1, failOn: 'error' })
      .rotate()
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || data.length !== info.width * info.height * 3) {
      throw new CodecError('bad_image', `unexpected pixel layout (${info.channels} channels)`);
    }
    return {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      format,
      hadAlpha: meta.hasAlpha === true,
    };
  } catch (e) {
    if (e instanceof CodecError) throw e;
    throw new CodecError('bad_image', `the image could not be decoded (${(e as Error).message})`);
  }
}

/** An image's displayed size from its header alone (EXIF rotation applied), or null when unreadable. */
export async function imageSize(input: Uint8Array): Promise<{ width: number; height: number } | null> {
  try {
    const meta = await sharp(input, { limitInputPixels: false, pages: 1 }).metadata();
    const width = meta.width ?? 0;
    const height = meta.pageHeight ?? meta.height ?? 0;
    if (width < 1 || height < 1) return null;
    return (meta.orientation ?? 1) >= 5 ? { width: height, height: width } : { width, height };
  } catch {
    return null;
  }
}

export interface EncodeImageOptions {
  /** JPEG and WebP quality, 1..100 (default 90); PNG is lossless */
  quality?: number;
}

export async function encodeImage(img: RgbImage, format: OutputFormat, options: EncodeImageOptions = {}): Promise<Buffer> {
  const q = options.quality ?? 90;
  const s = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  switch (format) {
    case 'png':
      return s.png({ compressionLevel: 6 }).toBuffer();
    case 'webp':
      return s.webp({ quality: q }).toBuffer();
    case 'jpeg':
      return s.jpeg({ quality: q, mozjpeg: false }).toBuffer();
  }
}

export function outputFormatFromName(name: string): OutputFormat | undefined {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  if (ext === 'jpg' || ext === 'jpeg') return 'jpeg';
  if (ext === 'png' || ext === 'webp') return ext;
  return undefined;
}

export const OUTPUT_MIME: Record<OutputFormat, string> = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' };

/** Limits on the size an image is encoded at: what the receiving model looks at, no more. */
export interface ResizeRule {
  maxLongSide: number;
  maxShortSide?: number;
  maxPixels?: number;
}

/** The size `rule` allows for a width x height image (aspect ratio kept, never larger). */
export function fittedSize(width: number, height: number, rule: ResizeRule): { width: number; height: number } {
  let scale = Math.min(1, rule.maxLongSide / Math.max(width, height));
  if (rule.maxShortSide) scale = Math.min(scale, rule.maxShortSide / Math.min(width, height));
  if (rule.maxPixels) scale = Math.min(scale, Math.sqrt(rule.maxPixels / (width * height)));
  if (scale >= 1) return { width, height };
  return { width: Math.max(1, Math.floor(width * scale)), height: Math.max(1, Math.floor(height * scale)) };
}

/** Downscale (never upscale) to what `rule` allows; Lanczos, like the backends do. */
export async function downscale(img: RgbImage, rule: ResizeRule): Promise<RgbImage> {
  const size = fittedSize(img.width, img.height, rule);
  if (size.width === img.width && size.height === img.height) return img;
  const { data, info } = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}
