"""The shipped model package: schema, hashes, tables, determinism of the entropy parameters, round trips."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import numpy as np
import onnx
import onnxruntime as ort
from conftest import REPO
from vlmpress_train.images import load_rgb, resize_center_crop
from vlmpress_train.package_codec import PackageCodec

LEVELS = ort.GraphOptimizationLevel
OPT_LEVELS = (LEVELS.ORT_DISABLE_ALL, LEVELS.ORT_ENABLE_BASIC, LEVELS.ORT_ENABLE_EXTENDED, LEVELS.ORT_ENABLE_ALL)


def test_manifest_matches_schema_and_files(package: Path, manifest: dict):
    schema = json.loads((REPO / "models" / "manifest.schema.json").read_text())
    jsonschema.validate(manifest, schema)
    hashes = {}
    for key, g in manifest["graphs"].items():
        digest = hashlib.sha256((package / g["file"]).read_bytes()).hexdigest()
        assert digest == g["sha256"], key
        hashes[key] = digest
        onnx.checker.check_model(onnx.load(str(package / g["file"])))
    hashes["tables"] = hashlib.sha256((package / manifest["tables"]["file"]).read_bytes()).hexdigest()
    assert hashes["tables"] == manifest["tables"]["sha256"]
    expected_id = hashlib.sha256("".join(hashes[k] for k in ("encoder", "entropy", "decoder", "tables")).encode()).hexdigest()
    assert manifest["id"] == expected_id
    assert manifest["quality"]["levels"] >= 8
    assert sum(f.stat().st_size for f in package.iterdir()) <= 20 * 1024 * 1024
    assert (package / "MODEL_CARD.md").is_file()


def test_schema_rejects_broken_manifests(manifest: dict):
    schema = json.loads((REPO / "models" / "manifest.schema.json").read_text())
    for breakage in ({"format_version": 2}, {"id": "xyz"}, {"tables": {"file": "t.json"}}):
        bad = {**manifest, **breakage}
        try:
            jsonschema.validate(bad, schema)
        except jsonschema.ValidationError:
            continue
        raise AssertionError(f"schema accepted {breakage}")


def test_cdf_tables_are_valid(package: Path, manifest: dict):
    tables = json.loads((package / manifest["tables"]["file"]).read_text())
    total = 1 << tables["precision"]
    assert len(tables["hyper"]) == manifest["hyper_latent"]["channels"]
    assert len(tables["gaussian"]["tables"]) == manifest["entropy_parameters"]["scale_levels"]
    for t in tables["hyper"] + tables["gaussian"]["tables"]:
        freq = np.asarray(t["freq"])
        assert freq.sum() == total and freq.min() >= 1 and len(freq) >= 2
    widths = [len(t["freq"]) for t in tables["gaussian"]["tables"]]
    assert widths == sorted(widths)  # wider Gaussian, wider support
    scales = tables["gaussian"]["scales"]
    assert all(a < b for a, b in zip(scales, scales[1:]))


def test_entropy_parameters_identical_across_threads_and_optimisation_levels(package: Path, manifest: dict):
    rng = np.random.default_rng(7)
    nz = manifest["hyper_latent"]["channels"]
    z = rng.integers(-40, 41, size=(1, nz, 5, 7)).astype(np.int32)
    z[0, :, 0, 0] = 127
    z[0, :, 0, 1] = -127
    outputs = []
    for threads in (1, 2, 4):
        for level in OPT_LEVELS:
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.graph_optimization_level = level
            sess = ort.InferenceSession(str(package / "entropy.onnx"), so, providers=["CPUExecutionProvider"])
            outputs.append(sess.run(None, {"z_hat": z}))
    for mean_q, idx in outputs[1:]:
        assert np.array_equal(mean_q, outputs[0][0]) and np.array_equal(idx, outputs[0][1])


def test_round_trip_every_level(package: Path, shared: Path):
    codec = PackageCodec(package)
    img = np.asarray(resize_center_crop(load_rgb(shared / "data/kodak/kodim23.png"), 200, 200))[:, :, :]
    img = img[:197, :181]  # odd size: padded to the multiple, cropped back
    rates, psnrs = [], []
    for q in range(1, codec.manifest["quality"]["levels"] + 1):
        enc = codec.encode(img, float(q))
        rec = codec.decode(enc, float(q))
        assert rec.shape == img.shape and rec.dtype == np.uint8
        rates.append(codec.bytes_estimate(enc))
        mse = np.mean((rec.astype(np.float64) - img) ** 2)
        psnrs.append(10 * np.log10(255**2 / mse))
    assert all(a < b for a, b in zip(rates, rates[1:])), rates
    assert psnrs[-1] > psnrs[0] and psnrs[-1] > 24, psnrs
    # a fractional quality interpolates: its rate lies between its neighbours
    mid = codec.bytes_estimate(codec.encode(img, 4.5))
    assert rates[3] <= mid <= rates[4]


def test_decoding_is_thread_and_optimisation_invariant_for_indexes(package: Path, shared: Path):
    """The decoder's view (entropy parameters from z_hat) is the same under every session setting."""
    img = np.asarray(resize_center_crop(load_rgb(shared / "data/kodak/kodim01.png"), 160, 160))
    enc = PackageCodec(package, threads=1).encode(img, 3.0)
    for threads in (1, 3):
        for level in OPT_LEVELS:
            dec = PackageCodec(package, threads=threads, opt_level=level)
            mean_q, idx = dec.entropy_parameters(enc.z_hat, *enc.symbols.shape[1:])
            assert np.array_equal(mean_q, enc.mean_q) and np.array_equal(idx, enc.scale_index)
