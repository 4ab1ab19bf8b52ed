"""Export parity: ONNX Runtime runs of the exported graphs against the PyTorch model they came from.

Tolerances (stated in docs/model-format.md): encoder latents |diff| <= 1e-3 (float32 summation order),
z_hat equal except where z sits within 1e-3 of a rounding boundary, decoder pixels |diff| <= 1e-4 on
[0, 1]; the integer entropy graph is exactly equal to the NumPy integer reference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnxruntime as ort
import pytest
import torch
from vlmpress_train.codec.int_hyper import export_integer_layers, reference_forward
from vlmpress_train.codec.model import CodecConfig, VariableRateCodec
from vlmpress_train.export import export_package, load_checkpoint
from vlmpress_train.images import load_rgb, to_tensor


@pytest.fixture(scope="module")
def exported(tmp_path_factory, package):
    """The shipped checkpoint exported afresh into a temporary package."""
    out = tmp_path_factory.mktemp("pkg")
    export_package(package / "checkpoint.pt", out, "parity-test")
    return load_checkpoint(package / "checkpoint.pt"), out


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_encoder_and_decoder_parity(exported, shared):
    model, out = exported
    img = np.asarray(load_rgb(shared / "data/kodak/kodim05.png"))[:128, :192]
    x = to_tensor(img)
    for q in (1.0, 4.5, 8.0):
        qt = torch.tensor([q])
        with torch.no_grad():
            _, y_ref, z_ref = model.encode_latents(x, qt)
        y, z_hat = _session(out / "encoder.onnx").run(None, {"image": x.numpy(), "quality": qt.numpy()})
        assert np.abs(y - y_ref.numpy()).max() <= 1e-3
        z_ref = z_ref.numpy()
        near_boundary = np.abs(np.abs(z_ref - np.floor(z_ref)) - 0.5) < 1e-3
        mismatch = (z_hat != np.clip(np.round(z_ref), -127, 127)) & ~near_boundary
        assert not mismatch.any()
        y_hat = np.round(y)
        with torch.no_grad():
            x_ref = model.synthesize(torch.from_numpy(y_hat), qt).clamp(0, 1).numpy()
        (x_onnx,) = _session(out / "decoder.onnx").run(None, {"y_hat": y_hat, "quality": qt.numpy()})
        assert x_onnx.shape == x_ref.shape == (1, 3, 128, 192)
        assert np.abs(x_onnx - x_ref).max() <= 1e-4


def test_entropy_graph_is_the_integer_network(exported):
    model, out = exported
    rng = np.random.default_rng(0)
    z = rng.integers(-30, 31, size=(1, model.cfg.nz, 3, 5)).astype(np.int32)
    z[0, 0, 0, 0], z[0, 1, 0, 0] = 127, -127  # the clip bounds
    mean_q, idx = _session(out / "entropy.onnx").run(None, {"z_hat": z})
    ref_mean, ref_idx = reference_forward(export_integer_layers(model.h_s), z[0])
    assert np.array_equal(mean_q[0], ref_mean) and np.array_equal(idx[0], ref_idx)
    assert idx.min() >= 0 and idx.max() < model.cfg.scale_levels
    # the fake-quantized PyTorch network trained against is the same function up to rare ties
    with torch.no_grad():
        t_mean, t_idx, _ = model.h_s(torch.from_numpy(z).float())
    assert (t_idx.numpy() != idx).mean() < 0.01
    assert (np.round(t_mean.numpy() * 16) != mean_q).mean() < 0.01
    # out-of-range input (a corrupt stream) is clipped, never an error
    big = z.copy()
    big[0, 2, 1, 1] = 100000
    clipped = z.copy()
    clipped[0, 2, 1, 1] = 127
    a = _session(out / "entropy.onnx").run(None, {"z_hat": big})
    b = _session(out / "entropy.onnx").run(None, {"z_hat": clipped})
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_export_from_fresh_model_validates(tmp_path):
    torch.manual_seed(1)
    cfg = CodecConfig(n=16, m=24, nz=8, hyper_hidden=16)
    model = VariableRateCodec(cfg)
    ckpt = tmp_path / "tiny.pt"
    torch.save({"model": model.state_dict(), "config": {"codec": dataclasses.asdict(cfg)}}, ckpt)
    m = export_package(ckpt, tmp_path / "pkg", "tiny")
    assert m["latent"]["channels"] == 24 and m["tables"]["hyper_channels"] == 8
    for g in m["graphs"].values():
        assert (tmp_path / "pkg" / g["file"]).is_file()
