/**
 * Semantic AVIF against plain AVIF (effort 3) on 768×512 photos, in the same run: median encode,
 * decode and encode + decode times per image, the ratio to plain AVIF (the bound is 2x on
 * 2 cores), the pre-editor's own share, and the bytes at the same quality.
 *
 *   npm run build && node dist/bench/semantic-avif.js [--quality 45] [--rounds 3] [--threads 0]
 */
import { Codec, type RgbImage } from '../src/codec/index.js';
import { runEditorGraph } from '../src/codec/editor-package.js';
import { rgbOf, sharedFile } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { median, table, timed } from './stats.js';

const values = benchArgs('node dist/bench/semantic-avif.js [--quality 45] [--rounds 3] [--threads 0]', {
  quality: { type: 'string', default: '45' },
  rounds: { type: 'string', default: '3' },
  threads: { type: 'string', default: '0' },
});
const quality = Number(values.quality);
const rounds = Number(values.rounds);

const codec = await Codec.load({ session: { intraOpThreads: Number(values.threads) } });
const editor = codec.editor();
const images: RgbImage[] = [];
for (const n of ['kodim01', 'kodim05', 'kodim13', 'kodim19', 'kodim23', 'kodim24'])
  images.push(await rgbOf(sharedFile('data', 'kodak', `${n}.png`)));
if (images.some((i) => i.width * i.height !== 768 * 512)) throw new Error('the Kodak images are 768x512 (or 512x768)');

const times: Record<string, { encode: number[]; decode: number[]; both: number[]; bytes: number[] }> = {};
const editMs: number[] = [];
for (let r = 0; r < rounds; r++) {
  for (const img of images) {
    for (const name of ['avif', 'semantic-avif'] as const) {
      const [enc, e] = await timed(() => codec.encodePixels(img, { codec: name, quality }));
      const [, d] = await timed(() => codec.decode(enc.bitstream));
      const t = (times[name] ??= { encode: [], decode: [], both: [], bytes: [] });
      t.encode.push(e);
      t.decode.push(d);
      t.both.push(e + d);
      t.bytes.push(enc.bytes);
    }
    editMs.push((await timed(() => runEditorGraph(editor.preeditor!, img, quality)))[1]);
  }
}
const plain = median(times['avif']!.both);
const rows: (string | number)[][] = [['codec', 'encode ms', 'decode ms', 'encode+decode ms', 'ratio to avif', 'median bytes']];
for (const [name, t] of Object.entries(times)) {
  rows.push([name, median(t.encode), median(t.decode), median(t.both), median(t.both) / plain, median(t.bytes)]);
}
process.stdout.write(`768x512 Kodak photos x ${images.length}, ${rounds} rounds, quality ${quality}, editor ${editor.manifest.name}\n`);
process.stdout.write(table(rows) + '\n');
process.stdout.write(`pre-editor alone: median ${median(editMs).toFixed(1)} ms per image\n`);
await codec.close();
