/**
 * learned: the vlmpress codec of a model package (docs/model-format.md step by step). The analysis
 * graph gives latents and hyper-latents; the entropy graph, from the integer hyper-latents alone,
 * gives each latent's mean and scale index; both are rANS-coded. The entropy decoder depends only on
 * integers, which is why a bitstream decodes identically everywhere.
 */
import ort from 'onnxruntime-node';
import { CodecKind, QUALITY_ONE, serialiseContainer, type Container } from '../container.js';
import { CodecError, stopPoint, type StopCheck } from '../errors.js';
import type { RgbImage } from '../image-io.js';
import type { ModelPackage } from '../model-package.js';
import { cropChannels, fromTensor, paddedSize, roundHalfEven, toPaddedTensor } from '../pixels.js';
import { MAX_SYMBOL_MAGNITUDE, RansReader, RansWriter } from '../rans.js';
import type { CodecKindModule, ModelQuality, QualityScale } from './kind.js';
import { KIND_NAMES } from './names.js';

/** Latents of context around a decoder tile: the synthesis transform (four 5x5 stride-2 transposed
 * convolutions) reaches two latents, so three make every tiled pixel equal to the whole-image one. */
const TILE_HALO = 3;
/** The harness's settings of the learned codec (eval/vlmpress_eval/codecs.py), within the model's levels. */
const LADDER = [1, 1.5, 2, 3, 4, 5, 6.5, 8];

/** 1..levels in 1/256 steps; a byte budget searches a 1/8 grid, starting from the top level. Sizes
 * grow about 30 % a quality unit for the shipped model. */
function learnedScale(q: ModelQuality): QualityScale {
  const ladder = LADDER.filter((x) => x <= q.levels);
  return { min: 1, max: q.levels, default: q.default, budgetStart: q.levels, integer: false, ladder, budgetStep: 1 / 8, logSlope: 0.28 };
}

export const learned: CodecKindModule = {
  name: KIND_NAMES.learned,
  code: CodecKind.Learned,
  harnessName: 'vlmpress',
  label: 'vlmpress-learned',
  package: 'model',
  scale: learnedScale,

  encoder(ctx, img, { model, flags }) {
    const pkg = ctx.packages.model(model);
    let padded: ort.Tensor | undefined; // once, on the first probe
    return {
      scale: learnedScale(pkg.manifest.quality),
      at: (qualityFixed) => {
        padded ??= paddedTensor(pkg, img);
        return encodeAt(pkg, img, padded, qualityFixed, flags);
      },
      model: { name: pkg.manifest.name, id: pkg.manifest.id },
      provider: pkg.provider,
    };
  },

  async decode(ctx, c, stop) {
    const pkg = ctx.packages.modelByPrefix(c.modelIdPrefix);
    if (!pkg)
      throw new CodecError('unknown_model', `the bitstream was made by model ${c.modelIdPrefix}…, which is not loaded`, {
        modelIdPrefix: c.modelIdPrefix,
      });
    const m = pkg.manifest;
    const { levels } = m.quality;
    if (c.qualityFixed < QUALITY_ONE || c.qualityFixed > levels * QUALITY_ONE) {
      throw new CodecError('bad_header', `quality ${c.qualityFixed / QUALITY_ONE} is outside 1..${levels}`);
    }
    const { yh, yw, zh, zw } = latentSizes(pkg, paddedSize(c.height, m.paddingMultiple), paddedSize(c.width, m.paddingMultiple));

    const zHat = new Int32Array(m.hyperChannels * zh * zw);
    const hyper = new RansReader(c.hyper);
    const zPlane = zh * zw;
    for (let ch = 0; ch < m.hyperChannels; ch++) {
      const table = pkg.tables.hyper[ch]!;
      for (let i = 0; i < zPlane; i++) {
        const v = hyper.getValue(table);
        if (v > m.hyperClip || v < -m.hyperClip) throw new CodecError('corrupt_payload', 'hyper-latent value outside the clip range');
        zHat[ch * zPlane + i] = v;
      }
    }
    hyper.assertFinished();

    stopPoint(stop);
    const { meanQ, scaleIndex } = await entropyParameters(pkg, zHat, zh, zw, yh, yw);
    const yHat = new Float32Array(m.latentChannels * yh * yw);
    const latent = new RansReader(c.latent);
    const denom = m.meanDenominator;
    for (let i = 0; i < yHat.length; i++) {
      const table = pkg.tables.gaussian[scaleIndex[i]!];
      if (!table) throw new Error(`entropy graph produced scale index ${scaleIndex[i]} outside the tables`);
      yHat[i] = latent.getValue(table) + meanQ[i]! / denom;
    }
    latent.assertFinished();

    stopPoint(stop);
    const img = await synthesize(pkg, yHat, yh, yw, c, ctx.tileLatents, stop);
    return { ...img, quality: c.qualityFixed / QUALITY_ONE, model: { name: m.name, id: m.id } };
  },
};

function paddedTensor(pkg: ModelPackage, img: RgbImage): ort.Tensor {
  const t = toPaddedTensor(img, pkg.manifest.paddingMultiple);
  return new ort.Tensor('float32', t.data, [1, 3, t.height, t.width]);
}

function latentSizes(pkg: ModelPackage, paddedHeight: number, paddedWidth: number) {
  const m = pkg.manifest;
  const yh = paddedHeight / m.latentStride;
  const yw = paddedWidth / m.latentStride;
  return { yh, yw, zh: Math.ceil(yh / m.upsample), zw: Math.ceil(yw / m.upsample) };
}

async function entropyParameters(pkg: ModelPackage, zHat: Int32Array, zh: number, zw: number, yh: number, yw: number) {
  const M = pkg.manifest.latentChannels;
  const out = await pkg.entropy.run({ z_hat: new ort.Tensor('int32', zHat, [1, pkg.manifest.hyperChannels, zh, zw]) });
  const up = pkg.manifest.upsample;
  const meanQ = cropChannels(out['mean_q']!.data as Int32Array, M, up * zh, up * zw, yh, yw);
  const scaleIndex = cropChannels(out['scale_index']!.data as Int32Array, M, up * zh, up * zw, yh, yw);
  return { meanQ, scaleIndex };
}

async function encodeAt(pkg: ModelPackage, img: RgbImage, input: ort.Tensor, qualityFixed: number, flags: number): Promise<Uint8Array> {
  const m = pkg.manifest;
  const enc = await pkg.encoder.run({
    image: input,
    quality: new ort.Tensor('float32', Float32Array.of(qualityFixed / QUALITY_ONE), [1]),
  });
  const y = enc['y']!.data as Float32Array;
  const zHat = enc['z_hat']!.data as Int32Array;
  const [, , paddedHeight, paddedWidth] = input.dims as number[];
  const { yh, yw, zh, zw } = latentSizes(pkg, paddedHeight!, paddedWidth!);
  const { meanQ, scaleIndex } = await entropyParameters(pkg, zHat, zh, zw, yh, yw);

  const hyper = new RansWriter(zHat.length);
  const zPlane = zh * zw;
  for (let c = 0; c < m.hyperChannels; c++) {
    const table = pkg.tables.hyper[c]!;
    for (let i = 0; i < zPlane; i++) hyper.putValue(table, zHat[c * zPlane + i]!);
  }
  const latent = new RansWriter(y.length);
  const denom = m.meanDenominator;
  for (let i = 0; i < y.length; i++) {
    let k = roundHalfEven(Math.fround(y[i]! - meanQ[i]! / denom));
    if (k > MAX_SYMBOL_MAGNITUDE) k = MAX_SYMBOL_MAGNITUDE;
    else if (k < -MAX_SYMBOL_MAGNITUDE) k = -MAX_SYMBOL_MAGNITUDE;
    latent.putValue(pkg.tables.gaussian[scaleIndex[i]!]!, k);
  }
  return serialiseContainer({
    version: 1,
    codec: CodecKind.Learned,
    flags,
    modelIdPrefix: m.id.slice(0, 16),
    qualityFixed,
    width: img.width,
    height: img.height,
    hyper: hyper.finish(),
    latent: latent.finish(),
  });
}

/**
 * The synthesis transform, tile by tile: each tile of at most `T`² latents runs with TILE_HALO
 * latents of context on every inner side, and only its own pixels are kept. The decoder's working
 * memory (about 0.46 GB per megapixel in one run) is then bounded by the tile, not the image, and the
 * pixels equal those of one whole-image run (test/codec/tiled-decode.test.ts).
 */
async function synthesize(
  pkg: ModelPackage,
  yHat: Float32Array,
  yh: number,
  yw: number,
  c: Container,
  T: number,
  stop: StopCheck | undefined,
): Promise<RgbImage> {
  const M = pkg.manifest.latentChannels;
  const s = pkg.manifest.latentStride;
  const quality = new ort.Tensor('float32', Float32Array.of(c.qualityFixed / QUALITY_ONE), [1]);
  if (yh <= T && yw <= T) {
    const out = await pkg.decoder.run({ y_hat: new ort.Tensor('float32', yHat, [1, M, yh, yw]), quality });
    return fromTensor(out['image']!.data as Float32Array, s * yh, s * yw, c.width, c.height);
  }
  const rgb = new Uint8Array(c.width * c.height * 3);
  for (let ty = 0; ty < yh; ty += T) {
    for (let tx = 0; tx < yw; tx += T) {
      // Between tiles: an unwanted decode gives its thread back within one tile's time.
      stopPoint(stop);
      const y0 = Math.max(0, ty - TILE_HALO);
      const y1 = Math.min(yh, ty + T + TILE_HALO);
      const x0 = Math.max(0, tx - TILE_HALO);
      const x1 = Math.min(yw, tx + T + TILE_HALO);
      const th = y1 - y0;
      const tw = x1 - x0;
      const tile = new Float32Array(M * th * tw);
      for (let ch = 0; ch < M; ch++) {
        for (let y = 0; y < th; y++) {
          const from = (ch * yh + y0 + y) * yw + x0;
          tile.set(yHat.subarray(from, from + tw), (ch * th + y) * tw);
        }
      }
      const out = await pkg.decoder.run({ y_hat: new ort.Tensor('float32', tile, [1, M, th, tw]), quality });
      const data = out['image']!.data as Float32Array;
      const plane = s * th * (s * tw);
      // This tile's own pixels, in image coordinates, clipped to the real (unpadded) size.
      const py1 = Math.min(c.height, s * Math.min(yh, ty + T));
      const px1 = Math.min(c.width, s * Math.min(yw, tx + T));
      for (let py = s * ty; py < py1; py++) {
        const rowIn = (py - s * y0) * (s * tw) - s * x0;
        for (let px = s * tx; px < px1; px++) {
          const si = rowIn + px;
          const d = (py * c.width + px) * 3;
          for (let k = 0; k < 3; k++) {
            const v = roundHalfEven(Math.fround(data[k * plane + si]! * 255));
            rgb[d + k] = v < 0 ? 0 : v > 255 ? 255 : v;
          }
        }
      }
    }
  }
  return { data: rgb, width: c.width, height: c.height };
}
