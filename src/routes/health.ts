/** Liveness, readiness and the Prometheus scrape. */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../server/context.js';

export async function healthRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const checks = await ctx.readiness();
    return reply.status(checks.ready ? 200 : 503).send(checks);
  });

  app.get('/metrics', async (_req, reply) => {
    const { waiting, active } = await ctx.runner.counts();
    ctx.metrics.queueJobs.set({ state: 'waiting' }, waiting);
    ctx.metrics.queueJobs.set({ state: 'active' }, active);
    return reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
}
