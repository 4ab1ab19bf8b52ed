import json

from conftest import SHARED, fake_vvc_on_path
from vlmpress_eval.run import main


def test_a_small_run_writes_points_tables_and_plots(tmp_path, monkeypatch):
    # VVC through the stand-ins of VVenC/VVdeC (eval/tests/fake_vvc): the whole harness runs its
    # command lines, and the real apps on a machine that has them cannot change what is asserted.
    fake_vvc_on_path(tmp_path / "bin", monkeypatch)
    out = tmp_path / "res"
    code = main(
        [
            "--set",
            str(SHARED / "data" / "imagenet-dev"),
            "--limit",
            "3",
            "--stride",
            "50",
            "--codecs",
            "jpeg,vlmpress,vvc",
            "--receivers",
            "mbv1",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "points.json").read_text())
    assert result["images"] == 3
    assert result["codecs"] == ["jpeg", "vlmpress", "vvc"] and not result["skipped"]
    assert result["anchor"] == "vvc"
    for codec in ("jpeg", "vlmpress", "vvc"):
        pts = result["points"][codec]
        assert len(pts) == 8
        assert [p["bpp"] for p in pts] == sorted(p["bpp"] for p in pts)
        for p in pts:
            assert p["images"] == 3
            assert set(p["metrics"]) == {"psnr", "msssim", "mbv1_agree", "mbv1_top1"}
            assert 0 <= p["metrics"]["mbv1_agree"] <= 1
    # Every per-image row is there: 3 images x 24 coded points, plus the originals' true-label scores.
    assert len([r for r in result["rows"] if r["codec"] != "original"]) == 72
    assert set(result["originals"]) == {"mbv1_top1"}
    assert "vlmpress" in result["bd_rate"]["psnr"]["jpeg"] and "jpeg" in result["bd_rate"]["psnr"]["vvc"]
    table = (out / "bd_rate.md").read_text()
    assert "| jpeg |" in table and "| vvc |" in table
    for ext in ("png", "svg"):
        assert (out / "plots" / f"mbv1_agree.{ext}").stat().st_size > 1000


def test_labels_come_from_file_names_when_present(tmp_path):
    from vlmpress_eval.datasets import load_items

    (tmp_path / "n01440764_tench.png").write_bytes((SHARED / "data" / "kodak" / "kodim01.png").read_bytes())
    (tmp_path / "holiday.png").write_bytes((SHARED / "data" / "kodak" / "kodim02.png").read_bytes())
    items = {i.path.name: i for i in load_items(tmp_path, SHARED / "models" / "imagenet_synsets.txt")}
    assert items["n01440764_tench.png"].label == 1
    assert items["holiday.png"].label is None


def test_reuse_takes_an_earlier_runs_rows_only_for_the_same_images(tmp_path):
    base = ["--set", str(SHARED / "data" / "imagenet-dev"), "--stride", "50", "--receivers", "mbv1"]
    assert main([*base, "--limit", "2", "--codecs", "jpeg", "--out", str(tmp_path / "first")]) == 0
    first = json.loads((tmp_path / "first" / "points.json").read_text())

    out = tmp_path / "second"
    assert main([*base, "--limit", "2", "--codecs", "jpeg,webp", "--reuse", str(tmp_path / "first"), "--out", str(out)]) == 0
    second = json.loads((out / "points.json").read_text())
    assert list(second["reused"]) == ["jpeg"] and second["codecs"] == ["jpeg", "webp"]
    assert second["points"]["jpeg"] == first["points"]["jpeg"]
    assert len(second["points"]["webp"]) == 8 and "webp" in second["bd_rate"]["psnr"]["jpeg"]

    # Several folders: each codec from the first that has it (jpeg from the first run, webp from the second).
    third = tmp_path / "third"
    folders = ["--reuse", str(tmp_path / "first"), "--reuse", str(out)]
    assert main([*base, "--limit", "2", "--codecs", "jpeg,webp", *folders, "--out", str(third)]) == 0
    reused = json.loads((third / "points.json").read_text())["reused"]
    assert reused["jpeg"].endswith("first") and reused["webp"].endswith("second")

    # Other images (a longer list) or other receivers: nothing is taken, everything is coded.
    for extra in (["--limit", "3"], ["--limit", "2", "--receivers", "mbv2"]):
        again = tmp_path / f"again{len(extra)}{extra[-1]}"
        assert main([*base, *extra, "--codecs", "jpeg", "--reuse", str(tmp_path / "first"), "--out", str(again)]) == 0
        assert "reused" not in json.loads((again / "points.json").read_text())
