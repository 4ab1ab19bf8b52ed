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


def with_top1(points):
    """The same scores as true-label accuracy too (the originals' accuracy is 1 here): both measures pick alike."""
    return [(q, b, {**m, "mbv2_top1": m["mbv2_agree"], "mbv1_top1": m["mbv1_agree"]}) for q, b, m in points]


VLM = with_top1(
    [
        (1.0, 0.1, {"mbv2_agree": 0.90, "mbv1_agree": 0.88}),
        (2.0, 0.2, {"mbv2_agree": 0.96, "mbv1_agree": 0.97}),
        (4.0, 0.4, {"mbv2_agree": 0.985, "mbv1_agree": 0.94}),
        (8.0, 0.8, {"mbv2_agree": 0.995, "mbv1_agree": 0.985}),
    ]
)
JPEG = with_top1([(30, 0.3, {"mbv2_agree": 0.96, "mbv1_agree": 0.96}), (60, 0.6, {"mbv2_agree": 0.99, "mbv1_agree": 0.99})])


def test_lowest_quality_reaching_the_target_everywhere_above():
    curves = relative_curves([result({"vlmpress": VLM})])["vlmpress"]
    # q2 reaches 0.95 on both metrics but q4 falls back under it (mbv1 0.94): q8 is the answer.
    assert lowest_reaching(curves, ["mbv2_agree", "mbv1_agree"], 0.95)["setting"] == 8.0
    assert lowest_reaching(curves, ["mbv2_agree"], 0.95)["setting"] == 2.0
    assert lowest_reaching(curves, ["mbv2_agree"], 0.999) is None


def test_decisions_carry_image_counts_and_wilson_intervals_for_agreement():
    policy = build([result({"vlmpress": VLM, "jpeg": JPEG}, images=100)], {"name": "m", "id": "x" * 64})
    d = policy["classes"]["general"]["targets"]["agreement:0.95"]
    assert d["images"] == 100
    lo, hi = d["ci95"]["mbv2_agree"]
    assert lo < d["scores"]["mbv2_agree"] < hi
    # 95/100 agreeing: the Wilson interval is about 0.888-0.978 (a textbook value)
    assert wilson(0.95, 100) == pytest.approx([0.8883, 0.9785], abs=1e-3)
    assert wilson(1.0, 100)[1] == 1.0 and wilson(1.0, 100)[0] > 0.96
    assert set(d["ci95"]) == {"mbv2_agree", "mbv1_agree"}
    with_msssim = [(q, b, {**m, "msssim": 0.99}) for q, b, m in VLM]
    detail = build([result({"vlmpress": with_msssim}, images=100)], {"name": "m", "id": "x" * 64})["classes"]["detail"]["targets"][
        "agreement:0.95"
    ]
    assert set(detail["ci95"]) == {"mbv2_agree", "mbv1_agree"}, "only shares of images get a binomial interval"


def test_scores_are_relative_to_the_original():
    res = result({"vlmpress": [(1.0, 0.1, {"ocr_paddle": 0.45}), (2.0, 0.2, {"ocr_paddle": 0.88})]}, originals={"ocr_paddle": 0.9})
    curves = relative_curves([res])["vlmpress"]["ocr_paddle"]
    assert curves[2.0]["score"] == pytest.approx(0.88 / 0.9)


def test_table_per_class_and_target_with_codec_comparison():
    policy = build([result({"vlmpress": VLM, "jpeg": JPEG})], {"name": "m", "id": "x" * 64})
    general = {k.removeprefix("agreement:"): v for k, v in policy["classes"]["general"]["targets"].items() if k.startswith("agreement:")}
    assert policy["classes"]["general"]["targets"]["0.95"]["quality"] == general["0.95"]["quality"], "same scores, same pick"
    assert general["0.95"]["codec"] == "vlmpress" and general["0.95"]["quality"] == 8.0 and general["0.95"]["reached"]
    assert general["0.95"]["cheapest_measured"]["codec"] == "jpeg"
    assert general["0.95"]["per_codec_bpp"] == {"jpeg": 0.3, "vlmpress": 0.8}
    # unreachable target for every gateway codec: the closest setting (worst metric highest), flagged
    assert general["0.99"]["reached"] is False and general["0.99"]["quality"] == 8.0 and general["0.99"]["codec"] == "vlmpress"
    assert general["0.99"]["cheapest_measured"]["codec"] == "jpeg"
    assert policy["classes"]["text"]["missing"] == ["ocr_paddle", "ocr_tesseract"]
    # No per-image rows, so nothing is known to be within noise: the strictest accuracy target reached everywhere.
    assert policy["default_target"] == "0.98", "general reaches 0.98 (jpeg), 0.99 nobody"


def test_a_classical_gateway_codec_is_chosen_where_it_is_cheaper_or_closest():
    sharp = with_top1([(20, 0.15, {"mbv2_agree": 0.97, "mbv1_agree": 0.965}), (60, 0.5, {"mbv2_agree": 0.99, "mbv1_agree": 0.988})])
    policy = build([result({"vlmpress": VLM, "sharp-avif": sharp})], {"name": "m", "id": "x" * 64})
    t = policy["classes"]["general"]["targets"]
    assert (t["agreement:0.95"]["codec"], t["agreement:0.95"]["quality"], t["agreement:0.95"]["reached"]) == ("sharp-avif", 20, True)
    # 0.99 is reached by nobody: sharp-avif 60 comes closest (worst metric 0.988 vs vlmpress 0.985)
    assert (t["agreement:0.99"]["codec"], t["agreement:0.99"]["quality"], t["agreement:0.99"]["reached"]) == ("sharp-avif", 60, False)


def test_the_default_is_the_mildest_accuracy_target_within_noise_of_the_original():
    """With per-image rows, accuracy decisions carry the paired bootstrap interval of the change; the
    default is the mildest target whose general choice cannot be told from the original."""
    images = [f"n{i:08d}" for i in range(200)]
    # The original is right on 180 of 200. q2 loses 7 of them: 96.1 % kept, reaches 0.95, but the loss
    # is significant. q4 loses 2 and gains 1: 99.4 % kept, within noise.
    right = {img: 1.0 if i < 180 else 0.0 for i, img in enumerate(images)}
    at = {2.0: dict(right), 4.0: dict(right)}
    for img in images[:7]:
        at[2.0][img] = 0.0
    at[4.0][images[0]] = at[4.0][images[1]] = 0.0
    at[4.0][images[190]] = 1.0
    rows = [
        {"image": img, "codec": "original", "setting": 0, "metrics": {m: right[img]}} for img in images for m in ("mbv2_top1", "mbv1_top1")
    ]
    points = []
    for q, bpp in ((2.0, 0.2), (4.0, 0.4)):
        acc = sum(at[q].values()) / len(images)
        metrics = {"mbv2_top1": acc, "mbv1_top1": acc, "mbv2_agree": 1.0, "mbv1_agree": 1.0}
        rows += [
            {"image": img, "codec": "vlmpress", "setting": q, "metrics": {**metrics, "mbv2_top1": at[q][img], "mbv1_top1": at[q][img]}}
            for img in images
        ]
        points.append((q, bpp, metrics))
    res = {**result({"vlmpress": points}, originals={"mbv2_top1": 0.9, "mbv1_top1": 0.9}, images=200), "rows": rows}
    policy = build([res], {"name": "m", "id": "x" * 64})
    general = policy["classes"]["general"]["targets"]
    mild, strict = general["0.95"], general["0.98"]
    assert (mild["measure"], mild["metrics"], mild["quality"], strict["quality"]) == ("accuracy", ["mbv2_top1", "mbv1_top1"], 2.0, 4.0)
    mean, lo, hi = mild["change_ci95"]["mbv2_top1"]
    assert mean == -0.035 and lo <= mean <= hi < 0 and mild["within_noise"] is False
    assert strict["within_noise"] is True
    assert policy["default_target"] == "0.98", "0.95 saves more, but its loss is measurable"
    assert "change_ci95" not in general["agreement:0.95"]


def test_shipped_policy_matches_the_committed_results():
    """models/<name>/policy.json is exactly what the policy builder makes of the results it names."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    policies = sorted(root.glob("models/*/policy.json"))
    assert policies, "the shipped model has a policy table"
    results = {}
    for f in [*root.glob("eval/results/*/points.json"), *root.glob("eval/results/*/scale.json")]:
        r = json.loads(f.read_text())
        results[r["command"]] = r
    for p in policies:
        shipped = json.loads(p.read_text())
        manifest = json.loads((p.parent / "manifest.json").read_text())
        assert shipped["model"] == {"name": manifest["name"], "id": manifest["id"]}
        used = [results[b["command"]] for b in shipped["built_from"]]
        assert build(used, shipped["model"]) == shipped, f"{p} is stale: rebuild it with python -m vlmpress_eval.policy"


def test_each_class_carries_the_measured_curves_behind_its_decisions():
    policy = build([result({"vlmpress": VLM, "jpeg": JPEG}, images=100)], {"name": "m", "id": "x" * 64})
    curves = policy["classes"]["general"]["curves"]
    assert set(curves) == {"accuracy", "agreement"}
    jpeg = curves["agreement"]["jpeg"]
    assert [p["setting"] for p in jpeg] == [30, 60] and [p["bpp"] for p in jpeg] == [0.3, 0.6]
    assert jpeg[1]["scores"] == {"mbv2_agree": 0.99, "mbv1_agree": 0.99}
    assert [p["setting"] for p in curves["accuracy"]["vlmpress"]] == [1.0, 2.0, 4.0, 8.0]
    # the table's choice is one of the plotted points
    choice = policy["classes"]["general"]["targets"]["agreement:0.95"]
    assert any(p["setting"] == choice["quality"] for p in curves["agreement"][choice["codec"]])
