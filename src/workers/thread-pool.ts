/**
 * Embedded job driver: a pool of worker threads (piscina) running the processor, for deployments
 * without Redis. Same processor and results as the BullMQ driver.
 */
import { Piscina } from 'piscina';
import { JobTimeoutError, ShuttingDownError, type RunnerHealth, type DecodeJob, type DecodeJobResult, type EncodeJob, type EncodeJobResult, type JobOutcome, type JobRunner } from './jobs.js';
import { unwrap, type ProcessorOptions } from './processor.js';

export interface ThreadPoolOptions extends ProcessorOptions {
  threads: number;
  jobTimeoutMs: number;
}

export class ThreadPoolRunner implements JobRunner {
  readonly mode = 'embedded' as const;
  private readonly pool: Piscina;
  private readonly timeoutMs: number;
  private closing = false;
  private active = 0;

  constructor(options: ThreadPoolOptions) {
    const { threads, jobTimeoutMs, ...processor } = options;
    this.timeoutMs = jobTimeoutMs;
    this.pool = new Piscina({
      filename: new URL('./pool-worker.js', import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Infinity,
      workerData: processor,
    });
  }

  private async run<T>(job: EncodeJob | DecodeJob | { kind: 'ready' }): Promise<T> {
    if (this.closing) throw new ShuttingDownError();
    const signal = AbortSignal.timeout(this.timeoutMs);
    this.active++;
    try {
      return unwrap<T>((await this.pool.run(job, { signal })) as JobOutcome<T>);
    } catch (e) {
      if (signal.aborted) throw new JobTimeoutError(this.timeoutMs);
      throw e;
    } finally {
      this.active--;
    }
  }

  encode(job: Omit<EncodeJob, 'kind'>): Promise<EncodeJobResult> {
    return this.run({ kind: 'encode', ...job });
  }

  decode(job: Omit<DecodeJob, 'kind'>): Promise<DecodeJobResult> {
    return this.run({ kind: 'decode', ...job });
  }

  private loaded: Promise<{ models: { name: string; id: string; provider: string; levels: number }[] }> | undefined;

  async ready(): Promise<{ models: { name: string; id: string; provider: string; levels: number }[] }> {
    // Warm every thread so the first requests do not pay for session creation.
    if (!this.loaded) {
      const loading = Promise.all(Array.from({ length: this.pool.options.maxThreads }, () => this.run<{ models: { name: string; id: string; provider: string; levels: number }[] }>({ kind: 'ready' }))).then((all) => all[0]!);
      // A failed load is tried again by the next call.
      loading.catch(() => {
        if (this.loaded === loading) this.loaded = undefined;
      });
      this.loaded = loading;
    }
    return this.loaded;
  }

  /**
   * From the warm-up's result, without sending a job: a readiness probe queued behind real work
   * would time out under load and take every busy replica out of service at once.
   */
  async health(): Promise<RunnerHealth> {
    if (this.closing) return { models: { ok: false, detail: 'shutting down' } };
    try {
      const r = await this.ready();
      return { models: { ok: true, detail: r.models.map((m) => `${m.name} (${m.provider})`).join(', ') } };
    } catch (e) {
      return { models: { ok: false, detail: (e as Error).message } };
    }
  }

  async counts(): Promise<{ waiting: number; active: number }> {
    const waiting = this.pool.queueSize;
    return { waiting, active: Math.max(0, this.active - waiting) };
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.pool.close();
  }
}
