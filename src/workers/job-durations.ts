/**
 * Recent run times of finished jobs, per queue: what a job of that queue is unlikely to beat. The
 * pool does not start a job whose deadline is nearer than the 10th percentile of its queue's recent
 * run times: nine jobs in ten take longer, so it would very likely be stopped part-way, its thread
 * time spent for nobody. Under overload a FIFO queue's oldest job is always close to its deadline,
 * and without this rule most of the thread's time went to such doomed starts (chaos suite,
 * metastable row). A low percentile keeps the rule conservative when job sizes are mixed: small
 * jobs set it, so it only refuses starts that almost nothing could finish.
 */
const WINDOW = 64;
const MIN_SAMPLES = 8;
const QUANTILE = 0.1;

export class JobDurations {
  private readonly recent = new Map<string, number[]>();

  /** a job of `queue` that ran to its end took `ms` */
  add(queue: string, ms: number): void {
    const xs = this.recent.get(queue) ?? [];
    xs.push(ms);
    if (xs.length > WINDOW) xs.shift();
    this.recent.set(queue, xs);
  }

  /** the time below which a new job of `queue` is unlikely to finish; 0 until enough jobs have run */
  shortLikely(queue: string): number {
    const xs = this.recent.get(queue);
    if (!xs || xs.length < MIN_SAMPLES) return 0;
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.floor(QUANTILE * (sorted.length - 1))]!;
  }
}
