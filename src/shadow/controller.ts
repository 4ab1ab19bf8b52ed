/**
 * The closed loop: which quality to send a backend's model for a task class and codec, from the
 * offline table's choice and the shadow verdicts counted so far. A pure function of its inputs.
 *
 * The rule. Agreement with the answer on the original is taken to grow with quality (more bytes, a
 * closer image). A point
 * - **keeps** the target when the one-sided 95 % Wilson lower bound of its own verdicts is at least
 *   the target, or a cheaper point keeps it;
 * - **fails** it when the one-sided 95 % Wilson upper bound of its own verdicts (at least
 *   MIN_VERDICTS_TO_FAIL of them) is below the target, or a dearer point fails it.
 * (Pooling the verdicts of neighbouring points instead would be valid too, but a bad cheap point then
 * drags down the bound of a good dear one for ever: the loop never settled in simulation.)
 * The decision is the cheapest point that keeps the target, if it is not dearer than the offline
 * choice; else the offline choice, unless it fails, and then the cheapest dearer point that does not
 * fail; when every point fails, the client's own image. With no or few verdicts nothing keeps or
 * fails, and the offline choice stands. Error rates: each bound is wrong at most 5 % of the time for
 * a fixed number of verdicts; the rule looks again after every verdict, which raises the chance that
 * a point is once declared to keep (or fail) wrongly above 5 % (the price of settling within a few
 * hundred checks), and a wrong call is undone as verdicts accumulate. All agreeing, Wilson needs 52
 * verdicts at a point to certify 0.95 and 133 to certify 0.98.
 *
 * Where the next replay is most useful (`probe`): the cheapest point not known to fail, below the
 * decision (verdicts there certify every dearer point at once); else, while the decision itself is not
 * certified, the next dearer point.
 */
import type { PointCounts } from './evidence.js';
import { wilsonInterval } from './interval.js';

export interface ControlInput {
  /** the codec's operating points, cheapest first */
  ladder: readonly number[];
  /** the offline table's quality */
  offline: number;
  /** agreement to keep, e.g. 0.98 */
  target: number;
  counts: ReadonlyMap<number, PointCounts>;
}

export interface ControlDecision {
  quality: number | 'original';
  source: 'offline' | 'shadow';
  reason: string;
  /** the verdicts behind the decision: of the point that settled it (keeps or fails), else of the chosen point */
  evidence: { n: number; agree: number; low: number; high: number };
  probe: number | null;
}

/**
 * A point is declared to fail only on this many verdicts of its own: one early disagreement (a 5 %
 * chance at 0.95 agreement) would otherwise fail a good point, and a failed point is not probed again.
 */
export const MIN_VERDICTS_TO_FAIL = 20;

const fmt = (x: number) => (Math.round(x * 1000) / 1000).toString();

export function decideQuality(input: ControlInput): ControlDecision {
  const points = [...new Set([...input.ladder, input.offline])].sort((a, b) => a - b);
  const own = (p: number) => input.counts.get(p) ?? { n: 0, agree: 0 };
  const keepsOwn = (p: number) => wilsonInterval(own(p).agree, own(p).n).low >= input.target;
  const failsOwn = (p: number) => own(p).n >= MIN_VERDICTS_TO_FAIL && wilsonInterval(own(p).agree, own(p).n).high < input.target;
  const keeps = (p: number) => points.some((q) => q <= p && keepsOwn(q));
  const fails = (p: number) => points.some((q) => q >= p && failsOwn(q));
  /** the verdicts that decided a point: its own, or those of the point that settled it */
  const basis = (p: number, by: (q: number) => boolean, order: 'cheaper' | 'dearer') => {
    const q = (order === 'cheaper' ? points.filter((x) => x <= p) : points.filter((x) => x >= p)).find(by);
    return own(q ?? p);
  };
  const summary = (c: { n: number; agree: number }) => ({ ...c, ...wilsonInterval(c.agree, c.n) });
  const told = (c: { n: number; agree: number }) => {
    const w = wilsonInterval(c.agree, c.n);
    return `${c.agree} of ${c.n} agree, 90 % interval [${fmt(w.low)}, ${fmt(w.high)}]`;
  };
  const target = `${fmt(input.target)} agreement`;
  const probeBelow = (chosen: number | 'original') => {
    const limit = chosen === 'original' ? Infinity : chosen;
    return points.find((p) => p < limit && !fails(p) && !keeps(p)) ?? null;
  };

  const cheapest = points.find(keeps);
  if (cheapest !== undefined && cheapest <= input.offline) {
    const c = basis(cheapest, keepsOwn, 'cheaper');
    return {
      quality: cheapest,
      source: cheapest === input.offline ? 'offline' : 'shadow',
      reason:
        cheapest === input.offline
          ? `offline quality ${input.offline}, confirmed by shadow verdicts to keep ${target} (${told(c)})`
          : `shadow verdicts: quality ${cheapest} keeps ${target} (${told(c)}; offline choice ${input.offline})`,
      evidence: summary(c),
      probe: probeBelow(cheapest),
    };
  }
  if (!fails(input.offline)) {
    const c = own(input.offline);
    return {
      quality: input.offline,
      source: 'offline',
      reason: `offline quality ${input.offline}; shadow verdicts do not move it yet (${c.n ? told(c) : 'none'})`,
      evidence: summary(c),
      probe: probeBelow(input.offline) ?? points.find((p) => p > input.offline && !keeps(p)) ?? null,
    };
  }
  const failed = basis(input.offline, failsOwn, 'dearer');
  const up = points.find((p) => p > input.offline && !fails(p));
  if (up === undefined)
    return {
      quality: 'original',
      source: 'shadow',
      reason: `shadow verdicts: no quality up to ${points.at(-1)} keeps ${target} (offline quality ${input.offline}: ${told(failed)}); the client's own image goes`,
      evidence: summary(failed),
      probe: null,
    };
  const c = own(up);
  return {
    quality: up,
    source: 'shadow',
    reason: `shadow verdicts: offline quality ${input.offline} fails ${target} (${told(failed)}); quality ${up}, the cheapest not shown to fail (${c.n ? told(c) : 'no verdicts yet'})`,
    evidence: summary(c),
    probe: keeps(up) ? null : (points.find((p) => p > up) ?? null),
  };
}
