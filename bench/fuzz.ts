/**
 * Long fuzz run (default 100,000 bitstream cases + 10,000 image cases) with the test suite's case
 * generator. Prints outcome counts and cases per second; exits 1 on the first untyped failure.
 *
 *   npm run build && node dist/bench/fuzz.js [--cases 100000] [--image-cases 10000] [--seed 1]
 */
import { Codec, CodecError } from '../src/codec/index.js';
import { bitstreamCase, imageCase } from '../test/fuzz/cases.js';
import { fuzzSeeds } from '../test/fuzz/seeds.js';
import { benchArgs } from './cli-args.js';

const values = benchArgs('node dist/bench/fuzz.js [--cases 100000] [--image-cases 10000] [--seed 1]', {
  cases: { type: 'string', default: '100000' },
  'image-cases': { type: 'string', default: '10000' },
  seed: { type: 'string', default: '1' },
});

async function run(
  label: string,
  n: number,
  make: (i: number) => { kind: string; data: Uint8Array },
  exercise: (data: Uint8Array, i: number) => Promise<void>,
): Promise<void> {
  const counts: Record<string, number> = {};
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const c = make(i);
    let outcome = 'ok';
    try {
      await exercise(c.data, i);
    } catch (e) {
      if (!(e instanceof CodecError)) {
        console.error(`${label} case ${i} (${c.kind}, seed ${values.seed}): untyped failure`, e);
        process.exit(1);
      }
      outcome = e.code;
    }
    counts[outcome] = (counts[outcome] ?? 0) + 1;
  }
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${label}: ${n} cases in ${s.toFixed(1)} s (${(n / s).toFixed(0)}/s), no untyped failure; outcomes ${JSON.stringify(counts)}`,
  );
}

const codec = await Codec.load({ maxPixels: 1_000_000 });
const seeds = await fuzzSeeds(codec);
const seed = Number(values.seed);
await run(
  'bitstreams',
  Number(values.cases),
  (i) => bitstreamCase(seeds.bitstreams, seed, i),
  async (data) => {
    await codec.decode(data);
  },
);
await run(
  'images',
  Number(values['image-cases']),
  (i) => imageCase(seeds.images, seed, i),
  async (data, i) => {
    const r = await codec.encodeFile(data, { quality: 1 + (i % 8) });
    await codec.decode(r.bitstream);
  },
);
console.log(`rss ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
await codec.close();
