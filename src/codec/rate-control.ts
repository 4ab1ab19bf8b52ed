/**
 * Byte-budget rate control, one search for every codec kind: the highest quality whose bitstream fits
 * `maxBytes`, on the kind's grid (1/8 quality steps for the learned codec, integers for the classical
 * encoders) without encoding every point. Sizes grow close to exponentially with quality (about +30 %
 * a quality unit for the shipped model, +2 to +4 % a point for sharp's encoders), so each probe aims at
 * the budget by secant steps in log(bytes); a bisection step follows any probe that fails to halve the
 * bracket, so the search always ends. Typically 2–4 encodes instead of up to 57 (learned) or 7 (bisection
 * over 1..100).
 */
import { CodecError } from './errors.js';
import { QUALITY_ONE } from './container.js';

/** The grid of one kind's scale: its step, and its d ln(bytes) / d quality before two probes measure it. */
export interface BudgetGrid {
  step: number;
  logSlope: number;
}

export interface Probe {
  qualityFixed: number;
  bytes: number;
}

interface Point<P> {
  i: number;
  p: P;
}

export async function searchQualityForBudget<P extends Probe>(
  encodeAt: (qualityFixed: number) => Promise<P>,
  minFixed: number,
  maxFixed: number,
  maxBytes: number,
  grid: BudgetGrid,
): Promise<{ best: P; probes: number }> {
  // Grid indices 0..n: minFixed + i * step, with the (possibly off-grid) requested maximum at n.
  const stepFixed = grid.step * QUALITY_ONE;
  const n = Math.ceil((maxFixed - minFixed) / stepFixed);
  const valueAt = (i: number) => (i === n ? maxFixed : minFixed + i * stepFixed);
  const stepUnits = grid.step;
  let probes = 0;
  const probe = async (i: number): Promise<Point<P>> => {
    probes++;
    return { i, p: await encodeAt(valueAt(i)) };
  };

  let hi = await probe(n);
  if (hi.p.bytes <= maxBytes) return { best: hi.p, probes };
  let lo: Point<P> | undefined;
  let otherFail: Point<P> | undefined; // a second failing point gives a measured slope before any fit
  let bisectNext = false;
  for (;;) {
    if (lo && hi.i - lo.i <= 1) return { best: lo.p, probes };
    const floor = lo ? lo.i + 1 : 0;
    let i: number;
    if (bisectNext && lo) {
      i = (lo.i + hi.i) >> 1;
    } else {
      const ref = lo ?? otherFail;
      let slope = grid.logSlope * stepUnits; // per grid index
      if (ref && ref.i !== hi.i) {
        const measured = (Math.log(hi.p.bytes) - Math.log(ref.p.bytes)) / (hi.i - ref.i);
        if (measured > 0) slope = measured;
      }
      i = Math.round(hi.i - (Math.log(hi.p.bytes) - Math.log(maxBytes)) / slope);
    }
    i = Math.min(hi.i - 1, Math.max(floor, i));
    const width = lo ? hi.i - lo.i : hi.i;
    const next = await probe(i);
    if (next.p.bytes <= maxBytes) {
      lo = next;
    } else {
      if (i === 0) {
        throw new CodecError(
          'budget_too_small',
          `the smallest encoding of this image is ${next.p.bytes} bytes, over the budget of ${maxBytes}`,
          {
            minBytes: next.p.bytes,
            maxBytes,
          },
        );
      }
      otherFail = hi;
      hi = next;
    }
    const newWidth = lo ? hi.i - lo.i : hi.i;
    bisectNext = !bisectNext && newWidth * 2 > width;
  }
}
