"""Bjøntegaard delta rate with piecewise cubic (PCHIP) interpolation, the method of VCEG-AM91 /
JVET CTC spreadsheets: log-rate as a function of quality, integrated over the quality range both
curves cover; the mean log difference is the rate change at equal quality.

Accuracy curves of real receivers are not always monotonic (a few images flip at random), so each
curve is first reduced to its upper monotone envelope: sorted by rate, a point is kept only when its
quality beats every cheaper point. Fewer than two points left, or no overlap: no BD-rate (None).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.interpolate import PchipInterpolator


def monotone_envelope(rates: list[float], quality: list[float]) -> tuple[np.ndarray, np.ndarray]:
    pts = sorted(zip(rates, quality))
    r_out: list[float] = []
    q_out: list[float] = []
    for r, q in pts:
        if not q_out or q > q_out[-1]:
            r_out.append(r)
            q_out.append(q)
    return np.asarray(r_out, dtype=np.float64), np.asarray(q_out, dtype=np.float64)


def bd_rate(
    anchor_rate: list[float], anchor_q: list[float], test_rate: list[float], test_q: list[float], samples: int = 1000
) -> float | None:
    """Average rate difference of `test` against `anchor` at equal quality, in percent (negative = fewer bytes)."""
    ra, qa = monotone_envelope(anchor_rate, anchor_q)
    rt, qt = monotone_envelope(test_rate, test_q)
    if len(qa) < 2 or len(qt) < 2 or np.any(ra <= 0) or np.any(rt <= 0):
        return None
    lo, hi = max(qa.min(), qt.min()), min(qa.max(), qt.max())
    if hi <= lo:
        return None
    fa = PchipInterpolator(qa, np.log10(ra))
    ft = PchipInterpolator(qt, np.log10(rt))
    grid = np.linspace(lo, hi, samples)
    avg_diff = float(np.trapezoid(ft(grid) - fa(grid), grid) / (hi - lo))
    return (math.pow(10.0, avg_diff) - 1.0) * 100.0


def overlap(anchor_q: list[float], test_q: list[float]) -> tuple[float, float] | None:
    """The quality interval both curves cover (what a BD-rate figure is averaged over)."""
    lo, hi = max(min(anchor_q), min(test_q)), min(max(anchor_q), max(test_q))
    return (lo, hi) if hi > lo else None
