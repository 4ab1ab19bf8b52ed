/** Liveness, readiness and the Prometheus scrape. */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../pipeline/context.js';

const QUEUE_COUNTS_DEADLINE_MS = 250;

export async function healthRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness: the process answers', security: [] } }, async () => ({
    status: 'ok',
  }));

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'Readiness: models loaded; Redis reachable and a worker live in Redis mode (503 otherwise)',
        security: [],
      },
    },
    async (_req, reply) => {
      const checks = await ctx.readiness();
      return reply.status(checks.ready ? 200 : 503).send(checks);
    },
  );

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [] } }, async (_req, reply) => {
    // The scrape never waits on Redis: queue depths older than this deadline keep their last value.
    const counts = await Promise.race([
      ctx.runner.counts().catch(() => null),
      new Promise<null>((r) => setTimeout(r, QUEUE_COUNTS_DEADLINE_MS, null).unref()),
    ]);
    if (counts) {
      ctx.metrics.queueJobs.set({ state: 'waiting' }, counts.waiting);
      ctx.metrics.queueJobs.set({ state: 'active' }, counts.active);
    }
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}
