/**
 * Shadow evaluation: for a sampled proxied request with images, after the client has its answer, the
 * gateway replays the request to the same backend twice, non-streaming and as deterministic as the
 * API allows: once with the client's original images, once as it was sent (compressed), and once with
 * the images at the closed loop's probe point (controller.ts). Each answer is compared with the one on
 * the originals (agreement.ts) and the verdict counted for its operating point (evidence.ts); the
 * counts move later decisions (`adjust`). Checks run one at a time in the background; one that fails (timeout, 429,
 * 5xx) is counted and changes nothing. Replays carry `x-vlmpress-shadow: replay`, their tokens count
 * against VLMPRESS_SHADOW_MAX_TOKENS_PER_HOUR, and nothing of a prompt or an answer is kept: the log
 * line of a verdict has hashes and lengths only.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { GatewayConfig } from '../config/config.js';
import type { Metrics } from '../metrics/registry.js';
import type { Backend } from '../lvlm-proxy/backends.js';
import { headerValue, type ApiDialect, type ReadAnswer, type RouteReplay } from '../lvlm-proxy/apis/dialect.js';
import { callUpstream } from '../lvlm-proxy/upstream.js';
import type { PolicyDecision } from '../policy/policy.js';
import { parseTarget } from '../policy/policy-table.js';
import { compareAnswers } from './agreement.js';
import { decideQuality } from './controller.js';
import type { EvidenceKey, EvidenceStore, PointCounts } from './evidence.js';
import { HourlySpend } from './spend.js';

/** Checks waiting beyond this many are dropped (counted skipped_busy): shadowing never queues without bound. */
const MAX_WAITING = 16;
/** A replay gets at most this long to its answer's headers. */
const REPLAY_TIMEOUT_MS = 120_000;

/** How often the verdict counts are read again from the store (other gateways add to them). */
const EVIDENCE_REFRESH_MS = 2_000;

/** The operating point a request's images were sent at, and what the closed loop needs to place it. */
export interface OperatingPoint {
  taskClass: string;
  codec: string;
  /** null: what was sent is not this codec's image at a quality (the client's own image went) */
  quality: number | null;
  /** the offline table's quality for this request */
  offline: number;
  /** the agreement to keep */
  target: number;
}

export interface ShadowCheck {
  backend: Backend;
  dialect: ApiDialect;
  replay: RouteReplay;
  /** the non-streaming path of the route */
  path: string;
  model: string;
  /** the request with the client's own images */
  original: Record<string, unknown>;
  /** the request as it went upstream, images compressed */
  sent: Record<string, unknown>;
  point: OperatingPoint;
  /** the request with its images compressed at another quality of the same codec (the probe); null when some image would not go at it */
  requestAt(quality: number): Promise<Record<string, unknown> | null>;
  clientCredentials: Record<string, string>;
  clientHeaders: IncomingHttpHeaders;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const keyString = (k: EvidenceKey) => [k.backend, k.model, k.taskClass, k.codec].join('\t');

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

export class ShadowRunner {
  readonly spend: HourlySpend;
  private readonly waiting: ShadowCheck[] = [];
  private running: Promise<void> | null = null;
  private closed = false;
  /** verdict counts by key, as last read from the store (plus this gateway's since) */
  private counts = new Map<string, Map<number, PointCounts>>();
  private refreshedAt = -Infinity;
  private refreshing: Promise<void> | null = null;

  constructor(
    private readonly config: Pick<GatewayConfig, 'shadowRate' | 'shadowMaxTokensPerHour' | 'upstreamTimeoutMs'>,
    private readonly metrics: Metrics,
    readonly evidence: EvidenceStore,
    private readonly log: Logger,
    /** a codec's operating points, cheapest first (its kind's ladder) */
    private readonly ladderOf: (codec: string) => readonly number[],
  ) {
    this.spend = new HourlySpend(config.shadowMaxTokensPerHour);
    this.refresh();
  }

  private rate(backend: Backend): number {
    return backend.shadowRate ?? this.config.shadowRate;
  }

  /**
   * The closed loop's second opinion on a decision the offline table made, for a backend that is
   * shadowed: the quality the verdicts so far support (controller.ts). Reads counts in memory,
   * refreshed from the store in the background, so it costs the request nothing.
   */
  adjust(decision: PolicyDecision, backend: Backend, model: string): PolicyDecision {
    if (decision.source !== 'policy' || this.rate(backend) <= 0) return decision;
    const target = decision.target ? parseTarget(decision.target) : null;
    if (!target) return decision;
    if (performance.now() - this.refreshedAt > EVIDENCE_REFRESH_MS) this.refresh();
    const counts = this.counts.get(keyString({ backend: backend.name, model, taskClass: decision.taskClass, codec: decision.codec }));
    if (!counts) return decision;
    const d = decideQuality({ ladder: this.ladderOf(decision.codec), offline: decision.quality, target: target.value, counts });
    if (d.source === 'offline') return { ...decision, reason: `${decision.reason}; ${d.reason}` };
    const moved = { ...decision, source: 'shadow' as const, offlineQuality: decision.quality, reason: `${decision.reason}; ${d.reason}` };
    return d.quality === 'original' ? { ...moved, sendOriginal: true } : { ...moved, quality: d.quality };
  }

  private refresh(): void {
    this.refreshing ??= this.evidence
      .all()
      .then((rows) => {
        const fresh = new Map<string, Map<number, PointCounts>>();
        for (const r of rows) {
          const k = keyString(r);
          if (!fresh.has(k)) fresh.set(k, new Map());
          fresh.get(k)!.set(r.quality, { n: r.n, agree: r.agree });
        }
        this.counts = fresh;
        this.refreshedAt = performance.now();
      })
      .catch((e: unknown) => this.log.warn({ err: e }, 'shadow evidence could not be read'))
      .finally(() => (this.refreshing = null));
  }

  /** Count a verdict in the store and in this gateway's copy. */
  private async record(key: EvidenceKey, quality: number, agree: boolean): Promise<void> {
    await this.evidence.add(key, quality, agree);
    const k = keyString(key);
    if (!this.counts.has(k)) this.counts.set(k, new Map());
    const c = this.counts.get(k)!.get(quality) ?? { n: 0, agree: 0 };
    this.counts.get(k)!.set(quality, { n: c.n + 1, agree: c.agree + (agree ? 1 : 0) });
  }

  /** Whether to check this request: the backend's rate (or the gateway's), unless the request opts out. */
  picks(backend: Backend, headers: IncomingHttpHeaders): boolean {
    if (headerValue(headers, 'x-vlmpress-shadow')?.trim().toLowerCase() === 'off') return false;
    const rate = this.rate(backend);
    return rate > 0 && Math.random() < rate;
  }

  /** Count a picked request that cannot be checked. */
  skip(backend: Backend, outcome: 'skipped_mixed'): void {
    this.metrics.shadowRequests.inc({ backend: backend.name, outcome });
  }

  /** Queue a check; call it once the client's answer is complete. */
  enqueue(check: ShadowCheck): void {
    if (this.closed) return;
    if (this.waiting.length >= MAX_WAITING) {
      this.metrics.shadowRequests.inc({ backend: check.backend.name, outcome: 'skipped_busy' });
      return;
    }
    this.waiting.push(check);
    this.running ??= this.drain().finally(() => (this.running = null));
  }

  /** Resolves when no check is waiting or running and the counts are read (tests, benches). */
  async idle(): Promise<void> {
    while (this.running || this.refreshing) await (this.running ?? this.refreshing);
  }

  /** Drop what waits and let the running check finish. */
  async close(): Promise<void> {
    this.closed = true;
    this.waiting.length = 0;
    await this.idle();
  }

  private async drain(): Promise<void> {
    for (let check = this.waiting.shift(); check; check = this.waiting.shift()) {
      try {
        await this.check(check);
      } catch (e) {
        this.metrics.shadowRequests.inc({ backend: check.backend.name, outcome: 'failed' });
        this.log.warn({ err: e, backend: check.backend.name }, 'shadow check failed');
      }
    }
  }

  private async check(c: ShadowCheck): Promise<void> {
    const count = (outcome: string) => this.metrics.shadowRequests.inc({ backend: c.backend.name, outcome });
    if (!this.spend.available()) return count('skipped_budget');
    const original = await this.replay(c, c.original);
    const sent = original && c.point.quality !== null ? await this.replay(c, c.sent) : original;
    if (!original || !sent) return count('failed');
    const key: EvidenceKey = { backend: c.backend.name, model: c.model, taskClass: c.point.taskClass, codec: c.point.codec };
    if (c.point.quality !== null) await this.judge(key, c.point.quality, original, sent);
    count('compared');
    // The probe: where the closed loop learns most (the cheapest point not known to fail, or the next dearer).
    const { probe } = decideQuality({
      ladder: this.ladderOf(c.point.codec),
      offline: c.point.offline,
      target: c.point.target,
      counts: this.counts.get(keyString(key)) ?? new Map(),
    });
    if (probe === null || probe === c.point.quality || !this.spend.available()) return;
    const request = await c.requestAt(probe);
    const probed = request && (await this.replay(c, request));
    if (probed) await this.judge(key, probe, original, probed);
    else if (request) count('probe_failed');
  }

  /** Compare an answer with the original's, count the verdict, and log it without its words. */
  private async judge(key: EvidenceKey, quality: number, original: ReadAnswer, other: ReadAnswer): Promise<void> {
    const verdict = compareAnswers(original.answer, other.answer);
    await this.record(key, quality, verdict.agree);
    this.metrics.shadowVerdicts.inc({
      backend: key.backend,
      model: key.model,
      class: key.taskClass,
      codec: key.codec,
      quality: String(quality),
      verdict: verdict.agree ? 'agree' : 'disagree',
    });
    // What may be logged: the verdict, and of each answer its hash and length, never its words.
    const shape = (a: ReadAnswer) => ({ sha256: digest(a.answer.text + JSON.stringify(a.answer.toolCalls)), length: a.answer.text.length });
    this.log.info({ shadow: { ...key, quality, ...verdict, original: shape(original), other: shape(other) } }, 'shadow verdict');
  }

  /** One deterministic, non-streaming replay; null when it brings no answer (never an exception for the caller). */
  private async replay(c: ShadowCheck, request: Record<string, unknown>): Promise<ReadAnswer | null> {
    const body = structuredClone(request);
    c.replay.deterministic(body);
    let res;
    try {
      res = await callUpstream({
        backend: c.backend,
        dialect: c.dialect,
        path: c.path,
        method: 'POST',
        body: JSON.stringify(body),
        timeoutMs: Math.min(this.config.upstreamTimeoutMs, REPLAY_TIMEOUT_MS),
        clientCredentials: c.clientCredentials,
        clientHeaders: c.clientHeaders,
        extraHeaders: { 'x-vlmpress-shadow': 'replay' },
      });
    } catch {
      return null;
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump();
      return null;
    }
    const read = c.replay.answer(await res.body.json().catch(() => null));
    if (read?.tokens) {
      this.spend.add(read.tokens);
      this.metrics.shadowTokens.inc({ backend: c.backend.name }, read.tokens);
    }
    return read;
  }
}
