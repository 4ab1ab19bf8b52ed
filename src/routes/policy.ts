/**
 * The policy in the open, for the inspector page and for clients that encode themselves:
 * GET /policy (the calibrated table with the measured curves behind it), POST /policy/decision (what
 * the gateway would do with an image of a given size, without sending the image).
 */
import type { FastifyInstance } from 'fastify';
import { describeKinds, fittedSize, kindPackage } from '../codec/index.js';
import { decidePolicy } from '../policy/policy.js';
import { policyRequest, viewRequest } from '../policy/request-fields.js';
import { IMAGE_DETAILS, RESOLUTION_PROFILES } from '../policy/resolution.js';
import { TASK_CLASSES, TASK_HINTS } from '../policy/task-classifier.js';
import { imageTokens } from '../policy/tokens.js';
import type { GatewayContext } from '../pipeline/context.js';
import { errors, policyFields, viewFields } from './schemas.js';
import { wilsonInterval } from '../shadow/interval.js';

/** Shadow settings and the verdict counts so far, each point with its agreement and 90 % Wilson interval. */
async function shadowSummary(ctx: GatewayContext) {
  const rows = await ctx.shadow.evidence.all();
  return {
    rate: ctx.config.shadowRate,
    backendRates: Object.fromEntries(ctx.backends.list.filter((b) => b.shadowRate !== undefined).map((b) => [b.name, b.shadowRate])),
    maxTokensPerHour: ctx.config.shadowMaxTokensPerHour,
    tokensLastHour: ctx.shadow.spend.spent(),
    evidence: rows
      .sort(
        (a, b) =>
          a.backend.localeCompare(b.backend) ||
          a.model.localeCompare(b.model) ||
          a.taskClass.localeCompare(b.taskClass) ||
          a.codec.localeCompare(b.codec) ||
          a.quality - b.quality,
      )
      .map((r) => ({ ...r, agreement: r.n ? r.agree / r.n : null, interval90: wilsonInterval(r.agree, r.n) })),
  };
}

/** Largest side a decision request may announce (the gateway never encodes more than VLMPRESS_MAX_PIXELS anyway). */
const MAX_SIDE = 65_535;

export async function policyRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const model = ctx.defaultModel();
  app.get(
    '/policy',
    {
      schema: {
        tags: ['policy'],
        summary: 'The calibrated policy table and the measured rate–accuracy curves behind it',
        response: { 200: { type: 'object', additionalProperties: true }, ...errors },
      },
    },
    async () => ({
      shadow: await shadowSummary(ctx),
      model: { name: model.name, id: model.id },
      editor: ctx.defaultEditor,
      codecs: describeKinds({ levels: model.levels, default: model.defaultQuality }),
      table: ctx.policyTable !== null,
      targets: ctx.targets,
      defaultTarget: ctx.policyTable?.defaultTarget ?? ctx.config.defaultTarget,
      taskClasses: TASK_CLASSES,
      taskHints: TASK_HINTS,
      profiles: RESOLUTION_PROFILES,
      details: IMAGE_DETAILS,
      classes: ctx.policyTable?.classes ?? {},
      upstreamCopy: { format: ctx.config.proxyImageFormat, quality: ctx.config.proxyImageQuality },
    }),
  );

  const fields = { ...policyFields(model.levels), ...viewFields };
  app.post<{ Body: Record<string, unknown> & { width: number; height: number } }>(
    '/policy/decision',
    {
      schema: {
        tags: ['policy'],
        summary: 'What the gateway would encode an image of this size with (no image sent)',
        description:
          'The same decision /compress makes, from the image size and the request fields. The task class comes from the fields alone (`task`, `prompt`): /compress also looks at the pixels of an image without either. Clients that encode themselves (the browser encoder) follow `policy` and `size`.',
        body: {
          type: 'object',
          required: ['width', 'height'],
          properties: {
            width: { type: 'integer', minimum: 1, maximum: MAX_SIDE },
            height: { type: 'integer', minimum: 1, maximum: MAX_SIDE },
            ...fields,
          },
        },
        response: { 200: { type: 'object', additionalProperties: true }, ...errors },
      },
    },
    async (req) => {
      const { width, height } = req.body;
      const view = viewRequest(req.body);
      const decision = decidePolicy(ctx.config, ctx.policyTable, {
        ...policyRequest(req.body, model.levels, ctx.targets),
        ...view,
        size: { width, height },
      });
      const size = fittedSize(width, height, decision.resize);
      const profile = view.profile ?? 'none';
      return {
        policy: decision,
        size,
        tokens: {
          profile,
          original: imageTokens(profile, width, height, view.detail),
          encoded: imageTokens(profile, size.width, size.height, view.detail),
        },
        editor: kindPackage(decision.codec) === 'editor' ? ctx.defaultEditor : null,
      };
    },
  );
}
