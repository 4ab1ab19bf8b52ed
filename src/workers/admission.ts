/**
 * Load shedding in front of either job driver: a gateway process holds at most `maxPending` codec
 * jobs (queued or running, in threads or on Redis) and answers the next request at once with 503
 * and Retry-After, instead of letting it wait out the job timeout while holding a connection and its
 * image in memory. In Redis mode the queue still absorbs what several gateways send; this bounds one.
 */
import {
  OverloadedError,
  type DecodeJob,
  type DecodeJobResult,
  type EncodeJob,
  type EncodeJobResult,
  type JobRunner,
  type RunnerHealth,
} from './jobs.js';

export class AdmissionLimitedRunner implements JobRunner {
  private pending = 0;

  constructor(
    private readonly inner: JobRunner,
    private readonly maxPending: number,
  ) {}

  get mode(): JobRunner['mode'] {
    return this.inner.mode;
  }

  private async admit<T>(work: () => Promise<T>): Promise<T> {
    if (this.maxPending > 0 && this.pending >= this.maxPending) {
      throw new OverloadedError(this.maxPending);
    }
    this.pending++;
    try {
      return await work();
    } finally {
      this.pending--;
    }
  }

  encode(job: Omit<EncodeJob, 'kind'>): Promise<EncodeJobResult> {
    return this.admit(() => this.inner.encode(job));
  }

  decode(job: Omit<DecodeJob, 'kind'>): Promise<DecodeJobResult> {
    return this.admit(() => this.inner.decode(job));
  }

  ready(): ReturnType<JobRunner['ready']> {
    return this.inner.ready();
  }

  health(): Promise<RunnerHealth> {
    return this.inner.health();
  }

  counts(): Promise<{ waiting: number; active: number }> {
    return this.inner.counts();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
