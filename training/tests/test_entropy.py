"""Integer CDF construction and the integer network's arithmetic, independent of any trained model."""

from __future__ import annotations

import numpy as np
import torch
from vlmpress_train.codec.entropy import FactorizedPrior, gaussian_likelihood, gaussian_pmf_tables, quantize_pmf, scale_table
from vlmpress_train.codec.int_hyper import IntHyperSynthesis, export_integer_layers, reference_forward


def test_quantize_pmf_exact_total_and_floor():
    for pmf in (np.array([1.0]), np.array([0.5, 0.5 - 1e-12]), np.full(900, 1 / 1000), np.array([1e-12, 1 - 1e-6, 1e-12])):
        f = quantize_pmf(pmf)
        assert f.sum() == 1 << 16 and f.min() >= 1 and len(f) == len(pmf) + 1


def test_gaussian_tables_cover_their_scale():
    scales = scale_table()
    tables = gaussian_pmf_tables(scales)
    for s, (offset, pmf) in zip(scales, tables):
        assert offset == -(len(pmf) // 2) and abs(1 - pmf.sum()) < 1e-6
        assert -offset >= 6 * s  # tail mass 1e-9 needs about 6.1 sigma
    # the training likelihood and the table agree
    s = torch.tensor(2.0)
    lik = gaussian_likelihood(torch.tensor([0.0, 1.0, -3.0]), s).numpy()
    offset, pmf = gaussian_pmf_tables(np.array([2.0]))[0]
    assert np.allclose(lik, pmf[np.array([0, 1, -3]) - offset], atol=1e-6)


def test_factorized_prior_tables_are_proper():
    torch.manual_seed(0)
    prior = FactorizedPrior(4, init_scale=3.0)
    for offset, pmf in prior.pmf_tables(127):
        assert offset <= 0 <= offset + len(pmf)
        assert np.all(pmf >= 0) and 1 - 1e-6 < pmf.sum() <= 1 + 1e-9
        f = quantize_pmf(pmf)
        assert f[-1] == 1  # trimmed tails below 1e-9: the escape keeps the minimum frequency


def test_integer_reference_matches_fake_quantised_network():
    torch.manual_seed(3)
    net = IntHyperSynthesis(6, 8, 10, scale_table())
    z = torch.randint(-20, 21, (1, 6, 3, 4)).float()
    with torch.no_grad():
        mean, idx, sigma = net(z)
    ref_mean, ref_idx = reference_forward(export_integer_layers(net), z[0].numpy().astype(np.int64))
    assert mean.shape == (1, 10, 12, 16)
    assert (np.round(mean[0].numpy() * 16) != ref_mean).mean() < 0.01
    assert (idx[0].numpy() != ref_idx).mean() < 0.01
    assert torch.all(sigma > 0)
