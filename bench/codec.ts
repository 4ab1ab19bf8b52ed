/**
 * Codec benchmark on Kodak (24 images, 768x512): for each vlmpress quality level, median encode and
 * decode milliseconds, mean bpp and PSNR; every other codec kind through the Codec at quality 55,
 * and with a byte budget (the shared budget search); in the same run, sharp's JPEG (quality 30–90)
 * and WebP encode/decode times, bpp and PSNR, so speed is reported as a ratio to JPEG on this machine.
 * Timings are pixels-in / pixels-out for every codec (no file decoding in the measured time).
 *
 *   npm run build && node dist/bench/codec.js [--images 24] [--threads 0] [--providers cuda,cpu] [--arena]
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { Codec, CODEC_CHOICES, parseProviderList, type CodecChoice, type EncodeOptions, type RgbImage } from '../src/codec/index.js';
import { psnr, sharedFile } from '../test/helpers.js';
import { mean, median, table, timed } from './stats.js';
import { benchArgs } from './cli-args.js';

const values = benchArgs('node dist/bench/codec.js [--images 24] [--threads 0] [--providers cuda,cpu] [--arena]', {
  images: { type: 'string', default: '24' },
  threads: { type: 'string', default: '0' },
  providers: { type: 'string', default: 'cuda,cpu' },
  arena: { type: 'boolean', default: false },
});

interface Row {
  codec: string;
  setting: string;
  encodeMs: number[];
  decodeMs: number[];
  bpp: number[];
  psnr: number[];
}

async function loadKodak(n: number): Promise<RgbImage[]> {
  const dir = sharedFile('data', 'kodak');
  const files = (await readdir(dir))
    .filter((f) => f.endsWith('.png'))
    .sort()
    .slice(0, n);
  return Promise.all(
    files.map(async (f) => {
      const { data, info } = await sharp(path.join(dir, f)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      return { data: new Uint8Array(data), width: info.width, height: info.height };
    }),
  );
}

async function sharpRow(images: RgbImage[], format: 'jpeg' | 'webp', quality: number): Promise<Row> {
  const row: Row = {
    codec: format === 'jpeg' ? 'JPEG (sharp)' : 'WebP (sharp)',
    setting: `q${quality}`,
    encodeMs: [],
    decodeMs: [],
    bpp: [],
    psnr: [],
  };
  for (const img of images) {
    const raw = { raw: { width: img.width, height: img.height, channels: 3 as const } };
    const [buf, encMs] = await timed(() =>
      (format === 'jpeg' ? sharp(img.data, raw).jpeg({ quality }) : sharp(img.data, raw).webp({ quality })).toBuffer(),
    );
    const [dec, decMs] = await timed(() => sharp(buf).raw().toBuffer());
    row.encodeMs.push(encMs);
    row.decodeMs.push(decMs);
    row.bpp.push((8 * buf.length) / (img.width * img.height));
    row.psnr.push(psnr(img, { data: new Uint8Array(dec), width: img.width, height: img.height }));
  }
  return row;
}

async function codecRow(codec: Codec, images: RgbImage[], kind: CodecChoice, setting: string, options: EncodeOptions): Promise<Row> {
  const row: Row = { codec: `${kind} (Codec)`, setting, encodeMs: [], decodeMs: [], bpp: [], psnr: [] };
  for (const img of images) {
    const [r, encMs] = await timed(() => codec.encodePixels(img, options));
    const [d, decMs] = await timed(() => codec.decode(r.bitstream));
    row.encodeMs.push(encMs);
    row.decodeMs.push(decMs);
    row.bpp.push(r.bpp);
    row.psnr.push(psnr(img, d));
  }
  process.stderr.write(`${kind} ${setting} done\n`);
  return row;
}

async function main(): Promise<void> {
  const images = await loadKodak(Number(values.images));
  const codec = await Codec.load({
    session: {
      intraOpThreads: Number(values.threads),
      executionProviders: parseProviderList(values.providers!),
      memoryArena: values.arena!,
    },
  });
  const provider = codec.modelInfo[0]!.provider;
  // Warm-up: first runs allocate ORT arenas and JIT-compile the coder.
  const warm = await codec.encodePixels(images[0]!, { quality: 4 });
  await codec.decode(warm.bitstream);
  await sharp(images[0]!.data, { raw: { width: images[0]!.width, height: images[0]!.height, channels: 3 } })
    .jpeg()
    .toBuffer();

  const rows: Row[] = [];
  for (let q = 1; q <= 8; q++) {
    const row: Row = { codec: `vlmpress (${provider})`, setting: `q${q}`, encodeMs: [], decodeMs: [], bpp: [], psnr: [] };
    for (const img of images) {
      const [r, encMs] = await timed(() => codec.encodePixels(img, { quality: q }));
      const [d, decMs] = await timed(() => codec.decode(r.bitstream));
      row.encodeMs.push(encMs);
      row.decodeMs.push(decMs);
      row.bpp.push(r.bpp);
      row.psnr.push(psnr(img, d));
    }
    rows.push(row);
    process.stderr.write(`vlmpress q${q} done\n`);
  }
  // The other kinds, and one budgeted encode per kind: what the kind table and the budget search cost.
  const learnedName = CODEC_CHOICES[0]!;
  for (const kind of CODEC_CHOICES) {
    const budget = { maxBytes: 20_000 };
    const settings: [string, EncodeOptions][] =
      kind === learnedName
        ? [['max 20000 B', budget]]
        : [
            ['q55', { codec: kind, quality: 55 }],
            ['q55, max 20000 B', { codec: kind, quality: 55, ...budget }],
          ];
    for (const [setting, options] of settings) rows.push(await codecRow(codec, images, kind, setting, options));
  }
  for (let q = 30; q <= 90; q += 10) rows.push(await sharpRow(images, 'jpeg', q));
  for (const q of [30, 50, 75, 90]) rows.push(await sharpRow(images, 'webp', q));
  await codec.close();

  const jpegRef = rows.find((r) => r.codec.startsWith('JPEG') && r.setting === 'q70')!;
  const jEnc = median(jpegRef.encodeMs);
  const jDec = median(jpegRef.decodeMs);
  const out: (string | number)[][] = [
    ['codec', 'setting', 'enc ms (median)', 'dec ms (median)', 'enc ×JPEG', 'dec ×JPEG', 'bpp (mean)', 'PSNR dB (mean)'],
  ];
  for (const r of rows) {
    const e = median(r.encodeMs);
    const d = median(r.decodeMs);
    out.push([
      r.codec,
      r.setting,
      e.toFixed(1),
      d.toFixed(1),
      (e / jEnc).toFixed(1),
      (d / jDec).toFixed(1),
      mean(r.bpp).toFixed(3),
      mean(r.psnr).toFixed(2),
    ]);
  }
  console.log(
    `Kodak, ${images.length} images ${images[0]!.width}x${images[0]!.height}; vlmpress threads=${values.threads} provider=${provider} memory arena=${values.arena ? 'on' : 'off'}; ratios against JPEG q70 in this run`,
  );
  console.log(table(out));
}

await main();
