/**
 * avif-screen (avifenc with libaom's screen-content tools) against plain sharp AVIF (effort 3) on
 * rendered text pages, in the same run: median encode, decode and encode + decode times per page, the
 * ratio to plain AVIF, and the bytes. Two rows per codec: the same quality, and the quality the
 * policy picks for the accuracy target 0.98 of rendered text (avif-screen q15; sharp AVIF q25, the
 * choice without avif-screen).
 *
 *   npm run build && node dist/bench/avif-screen.js [--rounds 3]
 */
import path from 'node:path';
import { Codec, type CodecChoice, type RgbImage } from '../src/codec/index.js';
import { FIXTURES, rgbOf } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { median, table, timeRoundTrip, type RoundTripTimes } from './stats.js';

const values = benchArgs('node dist/bench/avif-screen.js [--rounds 3]', { rounds: { type: 'string', default: '3' } });
const rounds = Number(values.rounds);

const codec = await Codec.load();
const pages: RgbImage[] = [];
for (const f of ['document-11px.png', 'receipt-14px.png']) pages.push(await rgbOf(path.join(FIXTURES, 'text', f)));

const variants: { name: string; codec: CodecChoice; quality: number }[] = [
  { name: 'avif q25 (policy without avif-screen)', codec: 'avif', quality: 25 },
  { name: 'avif-screen q25', codec: 'avif-screen', quality: 25 },
  { name: 'avif-screen q15 (policy)', codec: 'avif-screen', quality: 15 },
];
const times: Record<string, RoundTripTimes> = {};
for (let r = 0; r < rounds; r++) {
  for (const page of pages) {
    for (const v of variants) {
      const encode = () => codec.encodePixels(page, { codec: v.codec, quality: v.quality });
      await timeRoundTrip(times, v.name, encode, (b) => codec.decode(b));
    }
  }
}
const plain = times[variants[0]!.name]!;
const rows: (string | number)[][] = [
  ['codec', 'encode ms', 'decode ms', 'encode+decode ms', 'ratio to avif', 'median bytes', 'bytes ratio'],
];
for (const [name, t] of Object.entries(times)) {
  const both = median(t.both);
  rows.push([
    name,
    median(t.encode),
    median(t.decode),
    both,
    both / median(plain.both),
    median(t.bytes),
    median(t.bytes) / median(plain.bytes),
  ]);
}
const sizes = pages.map((p) => `${p.width}x${p.height}`).join(', ');
process.stdout.write(`rendered text pages (${sizes}), ${rounds} rounds (avifenc --jobs 1, sharp with its own threads)\n${table(rows)}\n`);
await codec.close();
