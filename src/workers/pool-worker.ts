/** Worker-thread entry of the embedded pool: one codec per thread, loaded once, reused for every job. */
import { workerData } from 'node:worker_threads';
import { codecFor, runJob, type ProcessorOptions } from './processor.js';
import type { Job } from './jobs.js';

const options = workerData as ProcessorOptions;

export default async function handle(job: Job | { kind: 'ready' }) {
  const codec = await codecFor(options);
  if (job.kind === 'ready')
    return {
      ok: true,
      value: {
        models: codec.modelInfo.map(({ name, id, provider, levels, defaultQuality }) => ({ name, id, provider, levels, defaultQuality })),
      },
    };
  return runJob(codec, job);
}
