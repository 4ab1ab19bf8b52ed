/** The closed-loop rule on synthetic verdict streams: it stays put on thin evidence, walks down when answers survive, up when they do not. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decideQuality, type ControlDecision } from '../../src/shadow/controller.js';
import type { PointCounts } from '../../src/shadow/evidence.js';
import { rng } from '../helpers.js';

const LADDER = [5, 15, 25, 35, 45, 55, 70, 85];

/**
 * Checks as the gateway makes them: each one a verdict at the decided point and one at the probe, each
 * agreeing with probability `agreement(q)`. Returns the decision after every check.
 */
function simulate(agreement: (q: number) => number, offline: number, target: number, checks: number, seed = 7): ControlDecision[] {
  const random = rng(seed);
  const counts = new Map<number, PointCounts>();
  const add = (q: number) => {
    const c = counts.get(q) ?? { n: 0, agree: 0 };
    counts.set(q, { n: c.n + 1, agree: c.agree + (random() < agreement(q) ? 1 : 0) });
  };
  const trail: ControlDecision[] = [];
  for (let i = 0; i < checks; i++) {
    const d = decideQuality({ ladder: LADDER, offline, target, counts });
    trail.push(d);
    if (d.quality !== 'original') add(d.quality);
    if (d.probe !== null) add(d.probe);
  }
  return trail;
}

/** The check after which the decision no longer changed. */
const settledAfter = (trail: ControlDecision[]) => {
  const last = trail.at(-1)!.quality;
  let i = trail.length;
  while (i > 0 && trail[i - 1]!.quality === last) i--;
  return i;
};

describe('closed-loop quality', () => {
  it('keeps the offline choice while the evidence is thin', () => {
    const none = decideQuality({ ladder: LADDER, offline: 55, target: 0.98, counts: new Map() });
    assert.deepEqual([none.quality, none.source, none.probe], [55, 'offline', 5]);
    assert.match(none.reason, /do not move it yet \(none\)/);
    // 60 agreeing verdicts at 35 certify 0.95 but not 0.98 (Wilson needs 133).
    const counts = new Map([[35, { n: 60, agree: 60 }]]);
    assert.equal(decideQuality({ ladder: LADDER, offline: 55, target: 0.98, counts }).quality, 55);
    assert.equal(decideQuality({ ladder: LADDER, offline: 55, target: 0.95, counts }).quality, 35);
    // Disagreements at the offline point make it fail only on 20 verdicts or more: 1 in 5 does not, 1 in 20 neither, 4 in 20 do.
    for (const [n, agree, quality] of [
      [5, 4, 55],
      [20, 19, 55],
      [20, 16, 70],
    ] as const)
      assert.equal(decideQuality({ ladder: LADDER, offline: 55, target: 0.98, counts: new Map([[55, { n, agree }]]) }).quality, quality);
  });

  it('walks down to the cheapest point when the answer never changes, and stops there', () => {
    for (const [target, within] of [
      [0.95, 60],
      [0.98, 140],
    ] as const) {
      const trail = simulate(() => 1, 55, target, 400);
      assert.equal(trail.at(-1)!.quality, 5, `target ${target}`);
      assert.ok(settledAfter(trail) <= within, `target ${target}: settled after ${settledAfter(trail)} checks`);
      assert.equal(trail.at(-1)!.probe, null, 'nothing cheaper left to try');
    }
  });

  it('settles where agreement meets the target when answers change at low quality', () => {
    const curve = new Map(LADDER.map((q, i) => [q, [0.3, 0.5, 0.7, 0.85, 0.93, 0.985, 0.998, 1][i]!]));
    for (const [offline, target] of [
      [35, 0.95], // the offline choice fails: the loop moves up
      [85, 0.95], // too dear: down
    ] as const) {
      const trail = simulate((q) => curve.get(q)!, offline, target, 2000);
      const final = trail.at(-1)!;
      assert.equal(typeof final.quality, 'number');
      assert.ok(curve.get(final.quality as number)! >= target - 0.01, `offline ${offline}: settled at ${final.quality}`);
      assert.ok((final.quality as number) <= 70, `offline ${offline}: settled at ${final.quality}, dearer than needed`);
      assert.ok(settledAfter(trail) < 1000, `offline ${offline}: settled after ${settledAfter(trail)} checks`);
    }
  });

  it('sends the client’s own image when no point keeps the target, and says so', () => {
    const counts = new Map(LADDER.map((q) => [q, { n: 40, agree: 30 }]));
    const d = decideQuality({ ladder: LADDER, offline: 55, target: 0.98, counts });
    assert.equal(d.quality, 'original');
    assert.match(d.reason, /no quality up to 85 keeps 0.98 agreement.*the client's own image goes/);
  });
});
