/**
 * The inspector page and the browser encoder in headless Chromium (the Debian package), against a
 * gateway on loopback in the same run:
 * - page load: median time from navigation to the page ready (policy loaded), fresh context each time;
 * - client-side encode time per image (768×512 Kodak: pixels → VLMP bitstream, in the page);
 * - uplink bytes per image with and without client-side encoding (the PNG originals, a JPEG q90 copy
 *   as a typical camera upload, the browser's bitstream), and the gateway's own bitstream;
 * - how close the browser's encode is to the gateway's at the same decision: bytes ratio and PSNR
 *   difference of the two reconstructions (both decoded by the gateway).
 * `--out DIR` also writes original / gateway / browser reconstructions as PNGs for the receiver
 * agreement check (`python -m vlmpress_eval.recon_agreement DIR`).
 * `--calibrate` (Node only, no browser): mean PSNR and bytes of sharp's AVIF and libavif's at each
 * quality, the source of the encoder's LIBAVIF_QUALITY table.
 *
 *   npm run build && node dist/bench/browser.js [--set kodak|imagenet-dev] [--limit 24] [--stride 1]
 *     [--fields codec=avif,quality=30] [--out DIR] [--calibrate]
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { parseContainer } from '../src/codec/container.js';
import type { RgbImage } from '../src/codec/index.js';
import { startGateway } from '../test/gateway/harness.js';
import { psnr, sharedFile } from '../test/helpers.js';
import { launchChromium } from '../test/web/chromium.js';
import { benchArgs } from './cli-args.js';
import { mean, median, table } from './stats.js';

const USAGE =
  'node dist/bench/browser.js [--set kodak|imagenet-dev] [--limit 24] [--stride 1] [--fields k=v,...] [--loads 5] [--out DIR] [--calibrate]';
const values = benchArgs(USAGE, {
  set: { type: 'string', default: 'kodak' },
  limit: { type: 'string', default: '24' },
  stride: { type: 'string', default: '1' },
  fields: { type: 'string', default: 'profile=openai' },
  loads: { type: 'string', default: '5' },
  out: { type: 'string' },
  calibrate: { type: 'boolean', default: false },
});

async function rgb(file: string | Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(file).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

function listImages(): string[] {
  const dir = sharedFile('data', values.set!);
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(png|jpe?g)$/i.test(f))
    .sort();
  const stride = Number(values.stride);
  return files
    .filter((_, i) => i % stride === 0)
    .slice(0, Number(values.limit))
    .map((f) => path.join(dir, f));
}

async function calibrate(): Promise<void> {
  const { default: encode, init } = await import('@jsquash/avif/encode.js');
  const wasmFile = path.join(path.dirname(fileURLToPath(import.meta.resolve('@jsquash/avif/encode.js'))), 'codec/enc/avif_enc.wasm');
  const wasm = await WebAssembly.compile(readFileSync(wasmFile));
  await init(wasm);
  const rows: Record<string, { bytes: number[]; psnr: number[] }> = {};
  const add = (k: string, bytes: number, p: number) => {
    rows[k] ??= { bytes: [], psnr: [] };
    rows[k].bytes.push(bytes);
    rows[k].psnr.push(p);
  };
  for (const file of listImages()) {
    const img = await rgb(file);
    const rgba = new Uint8ClampedArray(img.width * img.height * 4);
    for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
      rgba.set(img.data.subarray(i, i + 3), j);
      rgba[j + 3] = 255;
    }
    for (const q of [15, 30, 45, 55, 70, 85]) {
      const s = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
        .avif({ quality: q, effort: 3, chromaSubsampling: '4:2:0' })
        .toBuffer();
      add(`sharp q${q}`, s.length, psnr(img, await rgb(s)));
    }
    for (let q = 5; q <= 90; q += 5) {
      const b = Buffer.from(
        await encode({ data: rgba, width: img.width, height: img.height, colorSpace: 'srgb' }, { quality: q, speed: 6, subsample: 1 }),
      );
      add(`libavif q${q}`, b.length, psnr(img, await rgb(b)));
    }
  }
  console.log(
    table([
      ['encoder', 'mean bytes', 'mean PSNR'],
      ...Object.entries(rows).map(([k, r]) => [k, Math.round(mean(r.bytes)), mean(r.psnr).toFixed(2)]),
    ]),
  );
}

async function run(): Promise<void> {
  const fields = Object.fromEntries(
    values
      .fields!.split(',')
      .filter(Boolean)
      .map((kv) => kv.split('=') as [string, string]),
  );
  const gw = await startGateway('embedded', { VLMPRESS_WORKER_THREADS: '1' });
  const browser = await launchChromium();
  try {
    // Page load: a fresh context (no cache) each time, until the policy table has filled the form.
    const loads: number[] = [];
    for (let i = 0; i < Number(values.loads); i++) {
      const context = await browser.createBrowserContext();
      const page = await context.newPage();
      const t0 = performance.now();
      await page.goto(`${gw.base}/ui`);
      await page.waitForFunction(() => (document.querySelector<HTMLSelectElement>('#target')?.options.length ?? 0) > 0);
      loads.push(performance.now() - t0);
      await context.close();
    }
    const page = await browser.newPage();
    await page.goto(`${gw.base}/ui`);
    const env = await page.evaluate(() => ({ isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    const rows: { name: string; png: number; jpeg: number; server: number; browser: number; encodeMs: number; dPsnr: number }[] = [];
    if (values.out) mkdirSync(values.out, { recursive: true });
    const files = listImages();
    for (const [n, file] of files.entries()) {
      const bytes = readFileSync(file);
      // The gateway's encode of the same image with the same fields.
      const form = new FormData();
      for (const [k, v] of Object.entries(fields)) form.append(k, v);
      form.append('image', new Blob([bytes]), path.basename(file));
      const server = (await (await fetch(`${gw.base}/compress`, { method: 'POST', body: form })).json()) as { id: string; bytes: number };
      // The browser's, through the page's own module, as a client would use it.
      const b = await page.evaluate(
        async (b64: string, f: Record<string, string>) => {
          const enc = await import('/ui/lib/web/encoder.js' as string);
          const blob = new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))]);
          const r = await enc.compressInBrowser({ baseUrl: '' }, blob, f);
          return { id: r.stored.id as string, bytes: r.encoded.bitstream.length as number, encodeMs: r.encoded.encodeMs as number };
        },
        bytes.toString('base64'),
        fields,
      );
      const recon = async (id: string) => Buffer.from(await (await fetch(`${gw.base}/bitstreams/${id}/image?format=png`)).arrayBuffer());
      const [sPng, bPng] = [await recon(server.id), await recon(b.id)];
      const [sImg, bImg] = [await rgb(sPng), await rgb(bPng)];
      const original = await rgb(await sharp(bytes).resize(sImg.width, sImg.height, { fit: 'fill', kernel: 'lanczos3' }).png().toBuffer());
      const header = parseContainer(new Uint8Array(await (await fetch(`${gw.base}/bitstreams/${b.id}`)).arrayBuffer()));
      if (header.width !== sImg.width || header.height !== sImg.height) throw new Error(`${file}: browser and gateway sizes differ`);
      const jpeg = await sharp(bytes).jpeg({ quality: 90 }).toBuffer();
      rows.push({
        name: path.basename(file),
        png: bytes.length,
        jpeg: jpeg.length,
        server: server.bytes,
        browser: b.bytes,
        encodeMs: b.encodeMs,
        dPsnr: psnr(original, bImg) - psnr(original, sImg),
      });
      if (values.out) {
        const stem = String(n).padStart(4, '0');
        writeFileSync(
          path.join(values.out, `${stem}-original.png`),
          await sharp(original.data, { raw: { width: original.width, height: original.height, channels: 3 } })
            .png()
            .toBuffer(),
        );
        writeFileSync(path.join(values.out, `${stem}-gateway.png`), sPng);
        writeFileSync(path.join(values.out, `${stem}-browser.png`), bPng);
      }
    }
    writeFileSync(path.join(values.out ?? '.', 'browser-bench.json'), JSON.stringify({ fields, rows }, null, 1));
    const sum = (k: 'png' | 'jpeg' | 'server' | 'browser') => rows.reduce((a, r) => a + r[k], 0);
    const ratios = rows.map((r) => r.browser / r.server);
    const d = rows.map((r) => r.dPsnr);
    console.log(
      `Chromium ${await browser.version()}, cross-origin isolated: ${env.isolated}, cores: ${env.cores}; ${rows.length} images of ${values.set}; fields ${JSON.stringify(fields)}`,
    );
    console.log(
      table([
        ['figure', 'median', 'min', 'max'],
        ['page load (ms, fresh context)', median(loads).toFixed(0), Math.min(...loads).toFixed(0), Math.max(...loads).toFixed(0)],
        [
          'browser encode (ms per image)',
          median(rows.map((r) => r.encodeMs)).toFixed(0),
          Math.min(...rows.map((r) => r.encodeMs)).toFixed(0),
          Math.max(...rows.map((r) => r.encodeMs)).toFixed(0),
        ],
        ['bytes browser / gateway', median(ratios).toFixed(3), Math.min(...ratios).toFixed(3), Math.max(...ratios).toFixed(3)],
        ['PSNR browser − gateway (dB)', median(d).toFixed(2), Math.min(...d).toFixed(2), Math.max(...d).toFixed(2)],
      ]),
    );
    console.log(
      table([
        ['uplink, all images', 'bytes', 'vs original'],
        ['original files', sum('png'), '100 %'],
        ['JPEG q90 copies', sum('jpeg'), `${((100 * sum('jpeg')) / sum('png')).toFixed(1)} %`],
        ['browser bitstreams', sum('browser'), `${((100 * sum('browser')) / sum('png')).toFixed(1)} %`],
        ['(gateway bitstreams, stored)', sum('server'), `${((100 * sum('server')) / sum('png')).toFixed(1)} %`],
      ]),
    );
  } finally {
    await browser.close();
    await gw.close();
  }
}

if (values.calibrate) await calibrate();
else await run();
