"""The semantic pre-editor: the rate proxy, the real-codec layer, the model, the importance baseline,
and the shipped editor package's export parity."""

from __future__ import annotations

import hashlib
import json

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
import torch
from vlmpress_train.images import load_rgb
from vlmpress_train.preedit.avif import avif_roundtrip, real_avif
from vlmpress_train.preedit.export import export_package, load_editor
from vlmpress_train.preedit.importance import ImportanceSettings, edit_with_map, importance_map
from vlmpress_train.preedit.model import PreEditor, Restorer, gaussian_blur
from vlmpress_train.preedit.rate_proxy import load_proxy
from vlmpress_train.teachers.tflite_graph import TFLiteClassifier


@pytest.fixture(scope="module")
def photo(shared) -> torch.Tensor:
    im = np.asarray(load_rgb(shared / "data" / "kodak" / "kodim23.png"))[100:292, 200:392]
    return torch.from_numpy(np.array(im, copy=True)).permute(2, 0, 1)[None].float() / 255


def test_rate_proxy_follows_the_encoder(photo):
    """Fewer estimated bits at lower quality and after blurring, as the real AVIF sizes say."""
    proxy = load_proxy()
    im = (photo[0].permute(1, 2, 0) * 255).round().byte().numpy()
    blurred = gaussian_blur(photo, 1.5)
    est = {q: proxy.bits(photo, torch.tensor([float(q)])).item() for q in (20, 50, 80)}
    real = {q: avif_roundtrip(im, q)[1] * 8 for q in (20, 50, 80)}
    assert est[20] < est[50] < est[80] and real[20] < real[50] < real[80]
    assert proxy.bits(blurred, torch.tensor([50.0])).item() < est[50]
    assert 0.5 < est[50] / real[50] < 2.0, (est, real)


def test_real_avif_layer_is_the_encoder_forward_and_a_low_pass_backward(photo):
    x = photo.clone().requires_grad_(True)
    y = real_avif(x, torch.tensor([40.0]), 1.0)
    im = (photo[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert np.array_equal((y[0].permute(1, 2, 0) * 255).round().byte().numpy(), avif_roundtrip(im, 40)[0])
    g = torch.zeros_like(photo)
    g[0, :, 96, 96] = 1.0
    (grad,) = torch.autograd.grad(y, x, g)
    assert abs(grad.sum().item() - 3.0) < 1e-4 and grad.max().item() < 0.2  # spread, not lost


@pytest.mark.parametrize("mode", ["blend", "residual"])
def test_editor_any_size_and_bounded(mode):
    torch.manual_seed(0)
    editor = PreEditor(8, mode).eval()
    for h, w in ((37, 53), (64, 96)):
        x = torch.rand(1, 3, h, w)
        with torch.no_grad():
            out = editor(x, torch.tensor([50.0]))
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    if mode == "residual":
        assert torch.equal(out, x.clamp(0, 1))  # the zero-initialised head starts at the identity


def test_restorer_any_size_identity_at_start_and_quality_conditioned():
    torch.manual_seed(0)
    net = Restorer(8, 2).eval()
    x = torch.rand(1, 3, 37, 53)
    with torch.no_grad():
        assert torch.equal(net(x, torch.tensor([40.0])), x)  # zero-initialised head and FiLM
        for p in net.parameters():
            p.data.normal_(0, 0.2)
        low, high = net(x, torch.tensor([10.0])), net(x, torch.tensor([80.0]))
    assert low.shape == x.shape and 0 <= low.min() and low.max() <= 1
    assert (low - high).abs().max() > 1e-3  # the quality reaches the output


def test_blend_editor_only_smooths():
    """Whatever the weights, each output pixel is a convex mix of the image and its blurred copies."""
    torch.manual_seed(1)
    editor = PreEditor(8, "blend")
    for p in editor.parameters():
        p.data.normal_(0, 0.5)
    x = torch.zeros(1, 3, 40, 40)
    x[..., 20:, :] = 1.0
    with torch.no_grad():
        out = editor(x, torch.tensor([30.0]))
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out[..., :8, :], x[..., :8, :], atol=1e-6)  # flat regions stay flat


def test_importance_map_follows_content(shared):
    teacher = TFLiteClassifier(shared / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite").eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    im = np.asarray(load_rgb(shared / "data" / "imagenet-dev" / "n01443537_goldfish.JPEG"))
    x = torch.from_numpy(np.array(im, copy=True)).permute(2, 0, 1)[None].float() / 255
    s = ImportanceSettings()
    imp = importance_map(teacher, x, s)
    assert imp.shape[-2:] == x.shape[-2:] and 0 <= imp.min() and imp.max() <= 1
    assert (imp >= 0.999).float().mean() > 0.3  # the keep quantile
    edited = edit_with_map(x, imp, s)
    assert (edited - x).abs().max() > 0.05  # something was smoothed
    # Two overlapping windows: where they overlap, the maps agree although the overlap sits on the
    # right of one window and on the left of the other (a map that followed position would not).
    w = x.shape[-1]
    a, b = x[..., : 3 * w // 4], x[..., w // 4 :]
    ov = 3 * w // 4 - w // 4
    ma = importance_map(teacher, a, s)[..., w // 4 :]
    mb = importance_map(teacher, b, s)[..., :ov]
    assert torch.corrcoef(torch.stack([ma.flatten(), mb.flatten()]))[0, 1] > 0.5


def test_shipped_editor_packages_export_identically(editor_packages, tmp_path):
    """Re-exporting each shipped checkpoint gives a graph equal to PyTorch within 1e-4 on odd sizes,
    the shipped graph equals its checkpoint, and the manifest's id is the hash of its graphs' digests."""
    for package in editor_packages:
        manifest = json.loads((package / "manifest.json").read_text())
        jsonschema.validate(manifest, json.loads((package.parent / "editor-manifest.schema.json").read_text()))
        lines = "".join(f"{role}:{g['sha256']}\n" for role, g in manifest["graphs"].items())
        assert manifest["id"] == hashlib.sha256(lines.encode()).hexdigest()
        roles = {role: package / f"{role}.pt" for role in manifest["graphs"]}
        out = export_package(roles, tmp_path / package.name, "parity-test")
        assert list(out["graphs"]) == list(manifest["graphs"]), "roles keep the manifest's order"
        for role, g in manifest["graphs"].items():
            assert hashlib.sha256((package / g["file"]).read_bytes()).hexdigest() == g["sha256"], role
            assert out[role]["onnx_max_abs_diff_vs_torch"] <= 1e-4
            net = load_editor(roles[role])
            shipped = ort.InferenceSession(str(package / g["file"]), providers=["CPUExecutionProvider"])
            x = torch.rand(1, 3, 45, 70)
            with torch.no_grad():
                ref = net(x, torch.tensor([35.0])).numpy()
            got = shipped.run(None, {"image": x.numpy(), "quality": np.array([35.0], np.float32)})[0]
            assert np.abs(got - ref).max() <= 1e-4, (package.name, role)


def test_restoration_training_checkpoints_validates_and_resumes(shared, tmp_path):
    """Two steps of the restoration run (real AVIF under no_grad, the teacher on the restored crop),
    a validation row with the teacher's token distortion, then the same command resumes to four."""
    from vlmpress_train.preedit.train import load_config, train

    sets = [
        f"run_dir={tmp_path / 'run'}",
        f"data_root={shared / 'data'}",
        f"teacher={shared / 'models' / 'tf2_mobilenet_v2_1.0_224_ptq.tflite'}",
        "mode=restore",
        "arch=restorer",
        "width=8",
        "blocks=2",
        "batch_size=2",
        "crop=64",
        "val_images=2",
        "val_qualities=[30]",
        "validate_every=2",
        "checkpoint_every=1",
        "steps=2",
    ]
    ckpt = train(load_config(None, sets))
    first = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in first] == [1, 2] and first[-1]["mse"] > 0
    val = first[-1]["val"]["q30"]
    assert val["plain_bytes"] == val["edit_bytes"] > 0  # restoration never changes what is sent
    assert val["plain_l_tk"] > 0 and val["edit_l_tk"] > 0
    train(load_config(None, [*sets[:-1], "steps=4"]))
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert state["step"] == 4 and state["config"]["arch"] == "restorer"
    assert isinstance(load_editor(ckpt), Restorer)
