/** The JobObserver that counts the codec threads' work into the Prometheus metrics. */
import type { JobWorkMetrics } from '../metrics/registry.js';
import type { JobObserver } from './jobs.js';

export function jobWorkObserver(m: JobWorkMetrics, onAbandoned?: () => void): JobObserver {
  return {
    expired: (queue, stage) => m.jobsExpired.inc({ queue, stage }),
    worked: (queue, seconds, abandoned) => {
      m.jobBusySeconds.inc({ queue }, seconds);
      if (abandoned) {
        m.jobAbandonedSeconds.inc({ queue }, seconds);
        onAbandoned?.();
      }
    },
  };
}
