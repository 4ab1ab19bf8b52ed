import pytest
from vlmpress_eval.policy import build, lowest_reaching, relative_curves, wilson


def result(codec_points, originals=None, images=10):
    return {
        "set": "s",
        "images": images,
        "codecs": list(codec_points),
        "originals": originals or {},
        "points": {c: [{"setting": s, "bpp": b, "images": images, "metrics": m} for s, b, m in pts] for c, pts in codec_points.items()},
    }


VLM = [
    (1.0, 0.1, {"mbv2_agree": 0.90, "mbv1_agree": 0.88}),
    (2.0, 0.2, {"mbv2_agree": 0.96, "mbv1_agree": 0.97}),
    (4.0, 0.4, {"mbv2_agree": 0.985, "mbv1_agree": 0.94}),
    (8.0, 0.8, {"mbv2_agree": 0.995, "mbv1_agree": 0.985}),
]
JPEG = [(30, 0.3, {"mbv2_agree": 0.96, "mbv1_agree": 0.96}), (60, 0.6, {"mbv2_agree": 0.99, "mbv1_agree": 0.99})]


def test_lowest_quality_reaching_the_target_everywhere_above():
    curves = relative_curves([result({"vlmpress": VLM})])["vlmpress"]
    # q2 reaches 0.95 on both metrics but q4 falls back under it (mbv1 0.94): q8 is the answer.
    assert lowest_reaching(curves, ["mbv2_agree", "mbv1_agree"], 0.95)["setting"] == 8.0
    assert lowest_reaching(curves, ["mbv2_agree"], 0.95)["setting"] == 2.0
    assert lowest_reaching(curves, ["mbv2_agree"], 0.999) is None


def test_decisions_carry_image_counts_and_wilson_intervals_for_agreement():
    policy = build([result({"vlmpress": VLM, "jpeg": JPEG}, images=100)], {"name": "m", "id": "x" * 64})
    d = policy["classes"]["general"]["targets"]["0.95"]
    assert d["images"] == 100
    lo, hi = d["ci95"]["mbv2_agree"]
    assert lo < d["scores"]["mbv2_agree"] < hi
    # 95/100 agreeing: the Wilson interval is about 0.888-0.978 (a textbook value)
    assert wilson(0.95, 100) == pytest.approx([0.8883, 0.9785], abs=1e-3)
    assert wilson(1.0, 100)[1] == 1.0 and wilson(1.0, 100)[0] > 0.96
    assert set(d["ci95"]) == {"mbv2_agree", "mbv1_agree"}
    with_msssim = [(q, b, {**m, "msssim": 0.99}) for q, b, m in VLM]
    detail = build([result({"vlmpress": with_msssim}, images=100)], {"name": "m", "id": "x" * 64})["classes"]["detail"]["targets"]["0.95"]
    assert set(detail["ci95"]) == {"mbv2_agree", "mbv1_agree"}, "only shares of images get a binomial interval"


def test_scores_are_relative_to_the_original():
    res = result({"vlmpress": [(1.0, 0.1, {"ocr_paddle": 0.45}), (2.0, 0.2, {"ocr_paddle": 0.88})]}, originals={"ocr_paddle": 0.9})
    curves = relative_curves([res])["vlmpress"]["ocr_paddle"]
    assert curves[2.0]["score"] == pytest.approx(0.88 / 0.9)


def test_table_per_class_and_target_with_codec_comparison():
    policy = build([result({"vlmpress": VLM, "jpeg": JPEG})], {"name": "m", "id": "x" * 64})
    general = policy["classes"]["general"]["targets"]
    assert general["0.95"]["codec"] == "vlmpress" and general["0.95"]["quality"] == 8.0 and general["0.95"]["reached"]
    assert general["0.95"]["cheapest_measured"]["codec"] == "jpeg"
    assert general["0.95"]["per_codec_bpp"] == {"jpeg": 0.3, "vlmpress": 0.8}
    # unreachable target for every gateway codec: the closest setting (worst metric highest), flagged
    assert general["0.99"]["reached"] is False and general["0.99"]["quality"] == 8.0 and general["0.99"]["codec"] == "vlmpress"
    assert general["0.99"]["cheapest_measured"]["codec"] == "jpeg"
    assert policy["classes"]["text"]["missing"] == ["ocr_paddle", "ocr_tesseract"]
    assert policy["default_target"] == "0.98", "general reaches 0.98 (jpeg), 0.99 nobody: the strictest reached everywhere"


def test_a_classical_gateway_codec_is_chosen_where_it_is_cheaper_or_closest():
    sharp = [(20, 0.15, {"mbv2_agree": 0.97, "mbv1_agree": 0.965}), (60, 0.5, {"mbv2_agree": 0.99, "mbv1_agree": 0.988})]
    policy = build([result({"vlmpress": VLM, "sharp-avif": sharp})], {"name": "m", "id": "x" * 64})
    t = policy["classes"]["general"]["targets"]
    assert (t["0.95"]["codec"], t["0.95"]["quality"], t["0.95"]["reached"]) == ("sharp-avif", 20, True)
    # 0.99 is reached by nobody: sharp-avif 60 comes closest (worst metric 0.988 vs vlmpress 0.985)
    assert (t["0.99"]["codec"], t["0.99"]["quality"], t["0.99"]["reached"]) == ("sharp-avif", 60, False)


def test_shipped_policy_matches_the_committed_results():
    """models/<name>/policy.json is exactly what the policy builder makes of the results it names."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    policies = sorted(root.glob("models/*/policy.json"))
    assert policies, "the shipped model has a policy table"
    results = {}
    for f in root.glob("eval/results/*/points.json"):
        r = json.loads(f.read_text())
        results[r["command"]] = r
    for p in policies:
        shipped = json.loads(p.read_text())
        manifest = json.loads((p.parent / "manifest.json").read_text())
        assert shipped["model"] == {"name": manifest["name"], "id": manifest["id"]}
        used = [results[b["command"]] for b in shipped["built_from"]]
        assert build(used, shipped["model"]) == shipped, f"{p} is stale: rebuild it with python -m vlmpress_eval.policy"
