/**
 * The shadow replays' token spend over the last hour, against VLMPRESS_SHADOW_MAX_TOKENS_PER_HOUR.
 * Per gateway: each gateway keeps its own cap (a fleet of n gateways spends up to n times it).
 */
const HOUR_MS = 3_600_000;

export class HourlySpend {
  private entries: { at: number; tokens: number }[] = [];

  constructor(
    readonly capPerHour: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** tokens spent in the hour before now */
  spent(): number {
    const since = this.now() - HOUR_MS;
    while (this.entries.length && this.entries[0]!.at <= since) this.entries.shift();
    return this.entries.reduce((n, e) => n + e.tokens, 0);
  }

  /** whether a replay may start: something is left of the hour's allowance */
  available(): boolean {
    return this.spent() < this.capPerHour;
  }

  add(tokens: number): void {
    if (tokens > 0) this.entries.push({ at: this.now(), tokens });
  }
}
