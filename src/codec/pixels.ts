/** Pixel <-> tensor conversions, bit-compatible with the Python reference (training/vlmpress_train/package_codec.py). */
import type { RgbImage } from './image-io.js';

const U8_TO_UNIT = Float32Array.from({ length: 256 }, (_, i) => i / 255); // float32(i) / 255 in float32

/** IEEE round-half-to-even, the rounding of numpy.rint and numpy.round. */
export function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

export function paddedSize(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

/** Packed RGB u8 -> float32 NCHW in [0, 1], edge-replicated at the bottom and right to `multiple`. */
export function toPaddedTensor(img: RgbImage, multiple: number): { data: Float32Array; height: number; width: number } {
  const H = paddedSize(img.height, multiple);
  const W = paddedSize(img.width, multiple);
  const out = new Float32Array(3 * H * W);
  const plane = H * W;
  for (let y = 0; y < H; y++) {
    const sy = Math.min(y, img.height - 1);
    for (let x = 0; x < W; x++) {
      const sx = Math.min(x, img.width - 1);
      const s = (sy * img.width + sx) * 3;
      const d = y * W + x;
      out[d] = U8_TO_UNIT[img.data[s]!]!;
      out[plane + d] = U8_TO_UNIT[img.data[s + 1]!]!;
      out[2 * plane + d] = U8_TO_UNIT[img.data[s + 2]!]!;
    }
  }
  return { data: out, height: H, width: W };
}

/** float32 NCHW in [0, 1] (padded) -> packed RGB u8 of the top-left width x height. */
export function fromTensor(data: Float32Array, paddedHeight: number, paddedWidth: number, width: number, height: number): RgbImage {
  const out = new Uint8Array(width * height * 3);
  const plane = paddedHeight * paddedWidth;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = y * paddedWidth + x;
      const d = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const v = roundHalfEven(Math.fround(data[c * plane + s]! * 255));
        out[d + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return { data: out, width, height };
}

/** Copy the top-left h x w of each channel of a [C, H, W] tensor. */
export function cropChannels<T extends Float32Array | Int32Array>(src: T, channels: number, H: number, W: number, h: number, w: number): T {
  if (H === h && W === w) return src;
  const out = new (src.constructor as new (n: number) => T)(channels * h * w);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < h; y++) {
      const s = (c * H + y) * W;
      out.set(src.subarray(s, s + w), (c * h + y) * w);
    }
  }
  return out;
}

/** The `width` x `height` window of packed RGB at (left, top). */
export function cropRgb(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { data, width, height };
}

/** Copies `src` (placed with its top-left at image (left, top)) rows y0..y1, columns x0..x1 into `dst`. */
export function pasteRgb(dst: RgbImage, src: RgbImage, left: number, top: number, x0: number, y0: number, x1: number, y1: number): void {
  for (let y = y0; y < y1; y++) {
    const from = ((y - top) * src.width + (x0 - left)) * 3;
    dst.data.set(src.data.subarray(from, from + (x1 - x0) * 3), (y * dst.width + x0) * 3);
  }
}
