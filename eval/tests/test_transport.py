import json

import numpy as np
from conftest import SHARED
from vlmpress_eval.transport import decode, encode, main


def test_copies_decode_to_the_image_losslessly_or_close():
    rng = np.random.default_rng(0)
    img = (rng.random((40, 56, 3)) * 255).astype(np.uint8)
    for lossless in ("png", "webp:lossless"):
        assert np.array_equal(decode(encode(img, lossless)), img)
    lossy = decode(encode(img, "webp:90"))
    assert lossy.shape == img.shape and not np.array_equal(lossy, img)
    assert decode(encode(img, "jpeg:95")).shape == img.shape


def test_a_small_run_reports_keep_rates_accuracy_and_bytes(tmp_path):
    out = tmp_path / "res"
    code = main(
        [
            "--set",
            str(SHARED / "data" / "imagenet-dev"),
            "--limit",
            "2",
            "--stride",
            "70",
            "--stored",
            "85",
            "--transports",
            "png,webp:90",
            "--receivers",
            "mbv1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "transport.json").read_text())
    assert len(result["rows"]) == 4
    png, webp = result["summary"]
    assert png["transport"] == "png" and png["mbv1_keep"] == 1.0, "a lossless copy never changes a prediction"
    assert webp["median_bytes"] < png["median_bytes"]
    assert {"mbv1_acc_rec", "mbv1_acc", "mbv1_lost", "mbv1_gained"} <= set(webp)
    assert "| 85.000 | webp:90 |" in (out / "transport.md").read_text()
