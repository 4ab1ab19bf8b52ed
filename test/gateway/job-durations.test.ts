/** The rule that keeps the pool from starting jobs their deadline leaves no time for. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JobDurations } from '../../src/workers/job-durations.js';

describe('recent job run times', () => {
  it('ask nothing until eight jobs of the queue have run, then the median with others waiting, the 10th percentile alone', () => {
    const d = new JobDurations();
    for (let i = 1; i <= 7; i++) d.add('encode', i * 100);
    assert.equal(d.neededMs('encode', true), 0, 'too few samples: every job may start');
    d.add('encode', 800);
    assert.equal(d.neededMs('encode', false), 100);
    assert.equal(d.neededMs('encode', true), 400);
    assert.equal(d.neededMs('decode', true), 0, 'queues are apart');
  });

  it('follow the recent jobs only (the last 64), and small jobs keep the rule lenient when sizes mix', () => {
    const d = new JobDurations();
    for (let i = 0; i < 64; i++) d.add('decode', 3000);
    assert.equal(d.neededMs('decode', false), 3000);
    for (let i = 0; i < 64; i++) d.add('decode', i % 4 === 0 ? 20 : 3000);
    assert.equal(d.neededMs('decode', false), 20, 'a quarter of small jobs sets the bar at their size when alone');
    assert.equal(d.neededMs('decode', true), 3000);
  });
});
