import numpy as np
from vlmpress_eval.scale import downscale, floors


def test_floor_is_the_smallest_scale_kept_there_and_above_on_every_engine():
    retained = {
        "paddle": {1.0: 1.0, 0.75: 0.995, 0.5: 0.97, 0.375: 0.99},
        "tesseract": {1.0: 1.0, 0.75: 0.985, 0.5: 0.96, 0.375: 0.5},
    }
    # 0.375 keeps 0.99 on paddle but 0.5 above it fails: the floor stops at the first failure.
    assert floors(retained) == {"0.95": 0.5, "0.98": 0.75, "0.99": 1.0}


def test_downscale_keeps_the_aspect_ratio():
    img = np.zeros((100, 160, 3), dtype=np.uint8)
    assert downscale(img, 0.5).shape == (50, 80, 3)
    assert downscale(img, 1.0) is img
