/**
 * Shadow evaluation: for a sampled proxied request with images, after the client has its answer, the
 * gateway replays the request to the same backend twice, non-streaming and as deterministic as the
 * API allows: once with the client's original images, once as it was sent (compressed). The two
 * answers are compared (agreement.ts) and the verdict counted for the operating point the images were
 * sent at (evidence.ts). Checks run one at a time in the background; one that fails (timeout, 429,
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
import { compareAnswers } from './agreement.js';
import type { EvidenceKey, EvidenceStore } from './evidence.js';
import { HourlySpend } from './spend.js';

/** Checks waiting beyond this many are dropped (counted skipped_busy): shadowing never queues without bound. */
const MAX_WAITING = 16;
/** A replay gets at most this long to its answer's headers. */
const REPLAY_TIMEOUT_MS = 120_000;

/** The operating point a request's images were sent at. */
export interface OperatingPoint {
  taskClass: string;
  codec: string;
  quality: number;
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
  clientCredentials: Record<string, string>;
  clientHeaders: IncomingHttpHeaders;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const digest = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

export class ShadowRunner {
  readonly spend: HourlySpend;
  private readonly waiting: ShadowCheck[] = [];
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(
    private readonly config: Pick<GatewayConfig, 'shadowRate' | 'shadowMaxTokensPerHour' | 'upstreamTimeoutMs'>,
    private readonly metrics: Metrics,
    readonly evidence: EvidenceStore,
    private readonly log: Logger,
  ) {
    this.spend = new HourlySpend(config.shadowMaxTokensPerHour);
  }

  /** Whether to check this request: the backend's rate (or the gateway's), unless the request opts out. */
  picks(backend: Backend, headers: IncomingHttpHeaders): boolean {
    if (headerValue(headers, 'x-vlmpress-shadow')?.trim().toLowerCase() === 'off') return false;
    const rate = backend.shadowRate ?? this.config.shadowRate;
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

  /** Resolves when no check is waiting or running (tests, benches). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
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
    const sent = original && (await this.replay(c, c.sent));
    if (!original || !sent) return count('failed');
    const verdict = compareAnswers(original.answer, sent.answer);
    const key: EvidenceKey = { backend: c.backend.name, model: c.model, taskClass: c.point.taskClass, codec: c.point.codec };
    await this.evidence.add(key, c.point.quality, verdict.agree);
    this.metrics.shadowVerdicts.inc({
      backend: key.backend,
      model: key.model,
      class: key.taskClass,
      codec: key.codec,
      quality: String(c.point.quality),
      verdict: verdict.agree ? 'agree' : 'disagree',
    });
    count('compared');
    // What may be logged: the verdict, and of each answer its hash and length, never its words.
    const shape = (a: ReadAnswer) => ({ sha256: digest(a.answer.text + JSON.stringify(a.answer.toolCalls)), length: a.answer.text.length });
    this.log.info(
      { shadow: { ...key, quality: c.point.quality, ...verdict, original: shape(original), sent: shape(sent) } },
      'shadow verdict',
    );
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
