"""The Python size estimate against real bitstreams of the TypeScript runtime (the golden fixtures).

Evaluation in Python reports `container_bytes_estimate`; the product writes real rANS bytes. The golden
bitstreams in test/fixtures/golden/ were made by the product from PNG sources that Python reads to the
same pixels, so the two must agree within the rANS coder's rounding (a byte or two per stream).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from vlmpress_train.package_codec import PackageCodec

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "test" / "fixtures" / "golden"
SHARED = ROOT.parent / "shared"


def _sources() -> list[tuple[str, np.ndarray]]:
    kodim05 = np.asarray(Image.open(SHARED / "data" / "kodak" / "kodim05.png").convert("RGB"))
    kodim23 = np.asarray(Image.open(SHARED / "data" / "kodak" / "kodim23.png").convert("RGB"))
    return [("kodim05-q1.vlmp", kodim05), ("kodim23-crop-123x77-q3.5.vlmp", kodim23[211 : 211 + 77, 301 : 301 + 123])]


@pytest.mark.parametrize("index", [0, 1])
def test_estimate_matches_real_bitstream(index: int) -> None:
    manifest = json.loads((GOLDEN / "golden.json").read_text())
    entries = {e["file"]: e for e in manifest["entries"]}
    name, img = _sources()[index]
    entry = entries[name]
    real = (GOLDEN / name).read_bytes()
    assert len(real) == entry["bytes"]
    codec = PackageCodec(ROOT / "models" / "vlmp-mbv2-cpu-v1")
    enc = codec.encode(img, entry["quality"])
    estimate = codec.container_bytes_estimate(enc)
    assert abs(estimate - len(real)) <= 3, (name, estimate, len(real))
