/**
 * Semantic AVIF against plain AVIF (effort 3) on 768×512 photos, in the same run: for every loaded
 * editor package, median encode, decode and encode + decode times per image, the ratio to plain AVIF
 * (the bound is 2x on 2 cores), each network's own time (the pre-editor runs in the encode,
 * the restoration in the decode), and the bytes at the same quality.
 *
 *   npm run build && node dist/bench/semantic-avif.js [--quality 45] [--rounds 3] [--threads 0]
 */
import { Codec, type RgbImage } from '../src/codec/index.js';
import { runEditorGraph } from '../src/codec/editor-package.js';
import { rgbOf, sharedFile } from '../test/helpers.js';
import { benchArgs } from './cli-args.js';
import { median, table, timed, timeRoundTrip, type RoundTripTimes } from './stats.js';

const values = benchArgs('node dist/bench/semantic-avif.js [--quality 45] [--rounds 3] [--threads 0]', {
  quality: { type: 'string', default: '45' },
  rounds: { type: 'string', default: '3' },
  threads: { type: 'string', default: '0' },
});
const quality = Number(values.quality);
const rounds = Number(values.rounds);

const codec = await Codec.load({ session: { intraOpThreads: Number(values.threads) } });
const editors = codec.editorInfo.map((e) => codec.editor(e.id));
const images: RgbImage[] = [];
for (const n of ['kodim01', 'kodim05', 'kodim13', 'kodim19', 'kodim23', 'kodim24'])
  images.push(await rgbOf(sharedFile('data', 'kodak', `${n}.png`)));
if (images.some((i) => i.width * i.height !== 768 * 512)) throw new Error('the Kodak images are 768x512 (or 512x768)');

const times: Record<string, RoundTripTimes> = {};
const graphMs: Record<string, number[]> = {};
const variants: { name: string; run: (img: RgbImage) => ReturnType<Codec['encodePixels']> }[] = [
  { name: 'avif', run: (img) => codec.encodePixels(img, { codec: 'avif', quality }) },
  ...editors.map((e) => ({
    name: e.manifest.name,
    run: (img: RgbImage) => codec.encodePixels(img, { codec: 'semantic-avif', quality, model: e.manifest.id }),
  })),
];
for (let r = 0; r < rounds; r++) {
  for (const img of images) {
    for (const v of variants)
      await timeRoundTrip(
        times,
        v.name,
        () => v.run(img),
        (b) => codec.decode(b),
      );
    for (const e of editors) {
      for (const role of ['preeditor', 'restoration'] as const) {
        const graph = e[role];
        if (graph) (graphMs[`${e.manifest.name} ${role}`] ??= []).push((await timed(() => runEditorGraph(graph, img, quality)))[1]);
      }
    }
  }
}
const plain = median(times['avif']!.both);
const rows: (string | number)[][] = [['codec', 'encode ms', 'decode ms', 'encode+decode ms', 'ratio to avif', 'median bytes']];
for (const [name, t] of Object.entries(times)) {
  rows.push([name, median(t.encode), median(t.decode), median(t.both), median(t.both) / plain, median(t.bytes)]);
}
process.stdout.write(`768x512 Kodak photos x ${images.length}, ${rounds} rounds, quality ${quality}\n`);
process.stdout.write(table(rows) + '\n');
for (const [graph, ms] of Object.entries(graphMs)) process.stdout.write(`${graph} alone: median ${median(ms).toFixed(1)} ms per image\n`);
await codec.close();
