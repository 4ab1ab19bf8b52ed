/**
 * AVIF encoder effort (libaom speed through sharp) against encode time and rate–distortion, to pick
 * the effort the gateway's classical AVIF path uses. For each effort: median encode time per image
 * class, and the BD-rate on PSNR against effort 4 (sharp's default) over the quality range the
 * policy uses (negative = fewer bytes for the same PSNR).
 *
 *   npm run build && node dist/bench/avif-effort.js [--photos 24] [--efforts 0,1,2,3,4]
 */
import { readdirSync } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { sharedFile } from '../test/helpers.js';
import { median, table } from './stats.js';
import { benchArgs } from './cli-args.js';

const values = benchArgs('node dist/bench/avif-effort.js [--photos 24] [--efforts 0,1,2,3,4]', {
  photos: { type: 'string', default: '24' },
  efforts: { type: 'string', default: '0,1,2,3,4' },
});
const efforts = values.efforts.split(',').map(Number);
const QUALITIES = [20, 30, 45, 60, 70, 80, 90];

interface Raw {
  data: Buffer;
  width: number;
  height: number;
}

async function rawOf(s: Sharp): Promise<Raw> {
  const { data, info } = await s.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function psnr(a: Buffer, b: Buffer): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i]! - b[i]!) ** 2;
  return se === 0 ? 99 : 10 * Math.log10((255 * 255 * a.length) / se);
}

/** The receiver's view of a photo (shorter side 256, centre 224²), Kodak at 512 px, and rendered text pages. */
async function images(photos: number): Promise<Record<string, Raw[]>> {
  const dir = sharedFile('data', 'imagenet-dev');
  const names = readdirSync(dir)
    .sort()
    .filter((_, i) => i % 7 === 0)
    .slice(0, photos);
  const photo = await Promise.all(
    names.map((n) => rawOf(sharp(`${dir}/${n}`).resize(256, 256, { fit: 'outside' }).resize(224, 224, { fit: 'cover' }))),
  );
  const kodak = await Promise.all(
    ['kodim05', 'kodim13', 'kodim19', 'kodim23'].map((n) =>
      rawOf(sharp(sharedFile('data', 'kodak', `${n}.png`)).resize(512, 512, { fit: 'inside' })),
    ),
  );
  const lines = [
    'INVOICE 2026-0113  Total due: 1,284.50 EUR',
    'Item      Qty   Unit price   Amount',
    'Cable, shielded 2 m   4   12.90   51.60',
    'Please pay within 30 days of receipt.',
    'Ref. 88-2231-ZX  Terms and conditions apply.',
  ];
  const text = await Promise.all(
    [13, 16, 20, 26].map((px) => {
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="512" height="384"><rect width="100%" height="100%" fill="#fbfbf8"/>${lines
        .map((l, i) => `<text x="16" y="${40 + i * px * 1.8}" font-family="DejaVu Sans" font-size="${px}" fill="#1a1a1a">${l}</text>`)
        .join('')}</svg>`;
      return rawOf(sharp(Buffer.from(svg)));
    }),
  );
  return { 'photo 224²': photo, 'kodak 512': kodak, 'text 512×384': text };
}

/** Mean log-rate difference of curve b against curve a over their common PSNR range (linear interpolation in log bytes). */
function bdRate(a: [number, number][], b: [number, number][]): number {
  const interp = (curve: [number, number][], p: number) => {
    const c = [...curve].sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < c.length; i++) {
      if (p <= c[i]![0]) {
        const [p0, r0] = c[i - 1]!;
        const [p1, r1] = c[i]!;
        return r0 + ((r1 - r0) * (p - p0)) / Math.max(1e-9, p1 - p0);
      }
    }
    return c.at(-1)![1];
  };
  const lo = Math.max(Math.min(...a.map((x) => x[0])), Math.min(...b.map((x) => x[0])));
  const hi = Math.min(Math.max(...a.map((x) => x[0])), Math.max(...b.map((x) => x[0])));
  if (!(hi > lo)) return NaN;
  let sum = 0;
  const steps = 50;
  for (let i = 0; i <= steps; i++) {
    const p = lo + ((hi - lo) * i) / steps;
    sum += interp(b, p) - interp(a, p);
  }
  return Math.expm1(sum / (steps + 1));
}

async function main(): Promise<void> {
  const sets = await images(Number(values.photos));
  const rows: (string | number)[][] = [
    ['class', 'effort', 'median ms / image', 'x faster than 4', 'BD-rate vs 4 (PSNR)', 'bytes @ q70', 'PSNR @ q70'],
  ];
  for (const [name, imgs] of Object.entries(sets)) {
    const curves = new Map<number, { curve: [number, number][]; ms: number; q70: [number, number] }>();
    for (const effort of efforts) {
      const times: number[] = [];
      const curve: [number, number][] = [];
      let q70: [number, number] = [0, 0];
      for (const q of QUALITIES) {
        let bytes = 0;
        let quality = 0;
        for (const img of imgs) {
          const src = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
          const t0 = performance.now();
          const file = await src.avif({ quality: q, effort, chromaSubsampling: '4:2:0' }).toBuffer();
          times.push(performance.now() - t0);
          const back = await rawOf(sharp(file));
          bytes += file.length;
          quality += psnr(img.data, back.data);
        }
        curve.push([quality / imgs.length, Math.log(bytes / imgs.length)]);
        if (q === 70) q70 = [bytes / imgs.length, quality / imgs.length];
      }
      curves.set(effort, { curve, ms: median(times), q70 });
    }
    const ref = curves.get(4);
    for (const [effort, c] of curves) {
      rows.push([
        name,
        effort,
        c.ms,
        ref ? ref.ms / c.ms : NaN,
        ref ? `${(100 * bdRate(ref.curve, c.curve)).toFixed(1)}%` : '-',
        Math.round(c.q70[0]),
        c.q70[1],
      ]);
    }
  }
  console.log(
    `AVIF effort (sharp ${sharp.versions.sharp}, libaom ${sharp.versions.aom}), qualities ${QUALITIES.join(',')}, libvips concurrency ${sharp.concurrency()}`,
  );
  console.log(table(rows));
}

await main();
