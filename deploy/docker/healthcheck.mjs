// Docker HEALTHCHECK for both roles of the image (slim images have no curl): the gateway's /healthz
// on $PORT or, in a worker container where nothing listens there, the worker's on
// $VLMPRESS_WORKER_METRICS_PORT. Any answer other than 200, or a timeout, is unhealthy.
const ports = [process.env.PORT || '8080', process.env.VLMPRESS_WORKER_METRICS_PORT || '9464'].filter((p) => p !== '0');
for (const port of ports) {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
    if (res.ok) process.exit(0);
    console.error(`:${port}/healthz answered ${res.status}`);
    process.exit(1);
  } catch (e) {
    // connection refused: this container runs the other role, try the next port
    if (e?.cause?.code !== 'ECONNREFUSED') {
      console.error(`:${port}/healthz: ${e?.cause?.message ?? e?.message ?? e}`);
      process.exit(1);
    }
  }
}
console.error(`nothing answers /healthz on port ${ports.join(' or ')}`);
process.exit(1);
