/** Every Prometheus metric the gateway exports, defined in one place (prom-client). */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * What the codec threads spend, where they run (the gateway in embedded mode, the queue workers in
 * Redis mode; the same names in both, so one query covers either): jobs dropped or stopped because
 * their deadline passed, the thread time of all jobs, and the part of it nobody read.
 */
function jobWorkMetrics(registry: Registry) {
  return {
    jobsExpired: new Counter({
      name: 'vlmpress_jobs_expired_total',
      help: 'Codec jobs whose deadline passed, by queue and stage: queued (dropped before they started), running (stopped at a safe point: between decoder tiles, stages or budget probes)',
      labelNames: ['queue', 'stage'] as const,
      registers: [registry],
    }),
    jobBusySeconds: new Counter({
      name: 'vlmpress_job_busy_seconds_total',
      help: 'Codec thread time spent on jobs, by queue',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
    jobAbandonedSeconds: new Counter({
      name: 'vlmpress_job_abandoned_seconds_total',
      help: 'Codec thread time spent on jobs whose result nobody read (their caller had been answered job_timeout), by queue; a share of vlmpress_job_busy_seconds_total',
      labelNames: ['queue'] as const,
      registers: [registry],
    }),
  };
}

export type JobWorkMetrics = ReturnType<typeof jobWorkMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vlmpress_process_' });
  const m = {
    registry,
    httpDuration: new Histogram({
      name: 'vlmpress_http_request_duration_seconds',
      help: 'HTTP request duration by route, method and status code',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    encodeDuration: new Histogram({
      name: 'vlmpress_encode_duration_seconds',
      help: 'Image decode + codec encode time per image',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    decodeDuration: new Histogram({
      name: 'vlmpress_decode_duration_seconds',
      help: 'Codec decode + image encode time per image',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    imageBytes: new Counter({
      name: 'vlmpress_image_bytes_total',
      help: 'Image bytes per image handled, by route (compress, proxy, bitstreams: client-made bitstreams) and stage: client (what the client sent, or what its URL served), stored (the bitstream kept), upstream (the image sent to the LVLM backend, before base64). Savings are client minus stored or upstream, and can be negative',
      labelNames: ['route', 'stage'] as const,
      registers: [registry],
    }),
    imageTokens: new Counter({
      name: 'vlmpress_image_tokens_total',
      help: "Image tokens the backend bills by its profile's published rule, for the client's image and for the image sent (proxy; profiles with a known rule)",
      labelNames: ['profile', 'stage'] as const,
      registers: [registry],
    }),
    quality: new Histogram({
      name: 'vlmpress_encode_quality',
      help: 'Quality chosen per encoded image',
      buckets: [1, 2, 3, 4, 5, 6, 7, 8],
      registers: [registry],
    }),
    bpp: new Histogram({
      name: 'vlmpress_encode_bits_per_pixel',
      help: 'Bits per pixel of encoded images',
      buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2],
      registers: [registry],
    }),
    cacheHits: new Counter({
      name: 'vlmpress_encode_cache_hits_total',
      help: 'Encode requests answered from the store without encoding',
      registers: [registry],
    }),
    decodeCache: new Counter({
      name: 'vlmpress_decode_cache_requests_total',
      help: 'Decodes asked of the reconstruction cache, by outcome (hit, miss, shared: joined a decode in flight)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    decodeCacheBytes: new Gauge({
      name: 'vlmpress_decode_cache_bytes',
      help: 'Bytes of reconstructions held by the decode cache',
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'vlmpress_queue_jobs',
      help: 'Codec jobs by state',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'vlmpress_errors_total',
      help: 'Error responses by code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    imageFetches: new Counter({
      name: 'vlmpress_image_fetches_total',
      help: 'Image URL fetches by outcome (ok or the error code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    proxyImages: new Counter({
      name: 'vlmpress_proxy_images_total',
      help: 'Images in requests to the LVLM proxy, by API (openai, anthropic, gemini) and how: encoded, cached, client_bitstream (rewritten), untouched (files the provider holds, formats the API reads and the codec cannot, sent as they came)',
      labelNames: ['api', 'how'] as const,
      registers: [registry],
    }),
    upstreamDuration: new Histogram({
      name: 'vlmpress_upstream_request_duration_seconds',
      help: 'Time from forwarding a request upstream to its response headers, by backend, route and status (error: no response)',
      labelNames: ['backend', 'route', 'status'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    shadowRequests: new Counter({
      name: 'vlmpress_shadow_requests_total',
      help: 'Proxied requests picked for a shadow check, by backend and outcome: compared, failed (a replay had no usable answer: timeout, 429, 5xx), probe_failed (the third replay, at the probe point, had none; the check itself was compared), skipped_budget (the hourly token cap was spent), skipped_busy (too many checks waiting), skipped_mixed (images at different operating points)',
      labelNames: ['backend', 'outcome'] as const,
      registers: [registry],
    }),
    shadowTokens: new Counter({
      name: 'vlmpress_shadow_tokens_total',
      help: 'Tokens the shadow replays spent, as the backends reported them (prompt, images and completion)',
      labelNames: ['backend'] as const,
      registers: [registry],
    }),
    shadowVerdicts: new Counter({
      name: 'vlmpress_shadow_verdicts_total',
      help: 'Shadow comparisons of the answer on compressed images with the answer on the originals, by backend, model, task class, codec, quality and verdict (agree, disagree)',
      labelNames: ['backend', 'model', 'class', 'codec', 'quality', 'verdict'] as const,
      registers: [registry],
    }),
    storeCorrupt: new Counter({
      name: 'vlmpress_store_corrupt_entries_total',
      help: 'Stored entries that failed their hash or did not parse, removed and treated as misses, by part (bitstream, meta, cache)',
      labelNames: ['part'] as const,
      registers: [registry],
    }),
    jobsAbandoned: new Counter({
      name: 'vlmpress_jobs_abandoned_total',
      help: 'Embedded mode: jobs that ran on a codec thread but whose result nobody read (stopped at a safe point, or finished after their caller got job_timeout)',
      registers: [registry],
    }),
    ...jobWorkMetrics(registry),
    modelInfo: new Gauge({
      name: 'vlmpress_model_info',
      help: 'Loaded codec models (value 1)',
      labelNames: ['name', 'id', 'provider'] as const,
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** What a queue worker process exports (Redis mode), on its own small HTTP server. */
export function createWorkerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vlmpress_worker_process_' });
  return {
    registry,
    jobs: new Counter({
      name: 'vlmpress_worker_jobs_total',
      help: 'Jobs finished by queue and outcome (ok, bad_input, expired: past their deadline, failed)',
      labelNames: ['queue', 'outcome'] as const,
      registers: [registry],
    }),
    jobDuration: new Histogram({
      name: 'vlmpress_worker_job_duration_seconds',
      help: 'Time a job spends in the worker, from pick-up to result stored, by queue',
      labelNames: ['queue'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    jobWait: new Histogram({
      name: 'vlmpress_worker_job_wait_seconds',
      help: 'Time a job waited in the queue before a worker took it, by queue',
      labelNames: ['queue'] as const,
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60],
      registers: [registry],
    }),
    activeJobs: new Gauge({ name: 'vlmpress_worker_active_jobs', help: 'Jobs this worker is running now', registers: [registry] }),
    ...jobWorkMetrics(registry),
    modelInfo: new Gauge({
      name: 'vlmpress_worker_model_info',
      help: 'Models this worker serves (value 1)',
      labelNames: ['name', 'id', 'provider'] as const,
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
