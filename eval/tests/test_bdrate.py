import math

import pytest
from vlmpress_eval.bdrate import bd_rate, monotone_envelope

RATES = [0.1, 0.2, 0.4, 0.8, 1.6]
PSNR = [28.0, 30.5, 33.0, 35.5, 38.0]


def test_identical_curves_are_zero():
    assert bd_rate(RATES, PSNR, RATES, PSNR) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("factor", [0.5, 0.8, 1.2, 2.0])
def test_a_constant_rate_factor_is_recovered(factor):
    scaled = [r * factor for r in RATES]
    assert bd_rate(RATES, PSNR, scaled, PSNR) == pytest.approx((factor - 1) * 100, abs=1e-6)


def test_only_the_overlap_counts():
    # The test codec is 25 % cheaper over the shared range and has a tail the anchor lacks.
    test_rates = [r * 0.75 for r in RATES] + [5.0]
    test_q = PSNR + [45.0]
    # PCHIP slopes at the last shared point see the extra point, hence a tolerance.
    assert bd_rate(RATES, PSNR, test_rates, test_q) == pytest.approx(-25.0, abs=0.5)


def test_no_overlap_or_too_few_points_gives_none():
    assert bd_rate(RATES, PSNR, [1.0, 2.0], [50.0, 55.0]) is None
    assert bd_rate(RATES, PSNR, [1.0], [30.0]) is None


def test_envelope_drops_points_that_do_not_improve_on_cheaper_ones():
    r, q = monotone_envelope([0.4, 0.1, 0.2, 0.8], [0.90, 0.80, 0.92, 0.95])
    assert list(r) == [0.1, 0.2, 0.8]
    assert list(q) == [0.80, 0.92, 0.95]


def test_matches_a_hand_computed_value():
    # Anchor: log10(rate) linear in quality; test: slope differs, so the mean log gap is the
    # gap at the mid quality: log10(rt/ra) at q=33 is log10(0.5) - log10(0.4) -> +25 %.
    anchor_q = [28.0, 33.0, 38.0]
    anchor_r = [0.1, 0.4, 1.6]
    test_r = [0.1 * 10 ** (math.log10(1.25) * 0), 0.5, 2.5]  # gap 0 at q=28, log10(1.25) at 33, log10(1.5625) at 38
    got = bd_rate(anchor_r, anchor_q, test_r, anchor_q)
    assert got == pytest.approx(25.0, rel=0.02)
