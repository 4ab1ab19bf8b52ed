/** Seed bitstreams and images for fuzzing: small, so that cases which do decode stay fast. */
import sharp from 'sharp';
import type { Codec } from '../../src/codec/index.js';
import { readShared } from '../helpers.js';

export async function fuzzSeeds(codec: Codec): Promise<{ bitstreams: Uint8Array[]; images: Uint8Array[] }> {
  const photo = sharp(readShared('data', 'kodak', 'kodim20.png')).extract({ left: 300, top: 200, width: 45, height: 38 });
  const png = await photo.clone().png().toBuffer();
  const images = [
    png,
    await photo.clone().jpeg({ quality: 80 }).toBuffer(),
    await photo.clone().webp({ quality: 70 }).toBuffer(),
    await photo.clone().gif().toBuffer(),
    await photo.clone().tiff().toBuffer(),
    await photo.clone().avif({ effort: 0 }).toBuffer(),
  ];
  const bitstreams: Uint8Array[] = [];
  for (const [q, w, h] of [
    [1, 45, 38],
    [4.5, 33, 17],
    [8, 64, 64],
  ] as const) {
    const small = await sharp(png).resize(w, h, { fit: 'fill' }).png().toBuffer();
    bitstreams.push((await codec.encodeFile(small, { quality: q })).bitstream);
  }
  return { bitstreams, images };
}
