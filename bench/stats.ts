/** Small statistics and timing helpers for the benchmarks (medians, never means of timings). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, performance.now() - t0];
}

export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === 'number' ? (Number.isInteger(c) ? String(c) : c.toFixed(3)) : c)));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells.map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

export interface RoundTripTimes {
  encode: number[];
  decode: number[];
  both: number[];
  bytes: number[];
}

/** Time one encode and the decode of its bitstream, adding both (and the bytes) to `times[name]`. */
export async function timeRoundTrip(
  times: Record<string, RoundTripTimes>,
  name: string,
  encode: () => Promise<{ bitstream: Uint8Array; bytes: number }>,
  decode: (bitstream: Uint8Array) => Promise<unknown>,
): Promise<void> {
  const [enc, e] = await timed(encode);
  const [, d] = await timed(() => decode(enc.bitstream));
  const t = (times[name] ??= { encode: [], decode: [], both: [], bytes: [] });
  t.encode.push(e);
  t.decode.push(d);
  t.both.push(e + d);
  t.bytes.push(enc.bytes);
}
