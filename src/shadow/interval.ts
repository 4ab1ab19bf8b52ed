/**
 * The Wilson score interval of a proportion: k agreements in n comparisons. Unlike the normal
 * approximation it stays inside [0, 1] and is honest at the ends (all agree, a few samples), where
 * shadow evidence lives. z = 1.645: each bound is one-sided at 95 %, the pair a 90 % interval.
 */
export const Z_95_ONE_SIDED = 1.645;

export function wilsonInterval(k: number, n: number, z = Z_95_ONE_SIDED): { low: number; high: number } {
  if (n === 0) return { low: 0, high: 1 };
  const p = k / n;
  const z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / (1 + z2 / n);
  return { low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}
