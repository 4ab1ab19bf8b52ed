/**
 * Recent run times of finished jobs, per queue, and the rule the pool derives from them: a job is not
 * started when its deadline is nearer than what its queue's jobs take, since it would very likely be
 * stopped part-way and its thread time spent for nobody. Under overload the oldest job of a FIFO
 * queue is always close to its deadline, and without this rule most of the thread's time went to such
 * doomed starts (chaos suite, metastable row).
 *
 * How near is too near depends on who else waits. With other jobs queued behind it, a job must have at
 * least the median run time left: the thread goes to a job more likely to finish instead. Alone, it
 * only needs the 10th percentile: nine jobs in ten take longer, so it is refused only when almost
 * nothing could finish in time. Small jobs of a mixed queue pull both figures down, which keeps the rule
 * lenient for them.
 */
const WINDOW = 64;
const MIN_SAMPLES = 8;

export class JobDurations {
  private readonly recent = new Map<string, number[]>();

  /** a job of `queue` that ran to its end took `ms` */
  add(queue: string, ms: number): void {
    const xs = this.recent.get(queue) ?? [];
    xs.push(ms);
    if (xs.length > WINDOW) xs.shift();
    this.recent.set(queue, xs);
  }

  /** the least time a job of `queue` should have left to be started; 0 until enough jobs have run */
  neededMs(queue: string, othersWaiting: boolean): number {
    const xs = this.recent.get(queue);
    if (!xs || xs.length < MIN_SAMPLES) return 0;
    const sorted = [...xs].sort((a, b) => a - b);
    return sorted[Math.floor((othersWaiting ? 0.5 : 0.1) * (sorted.length - 1))]!;
  }
}
