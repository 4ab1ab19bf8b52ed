import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED
from PIL import Image
from vlmpress_eval.codecs import CheckpointEditorCodec, VvcCodec, all_codecs, codec_named
from vlmpress_eval.metrics import psnr


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    # Odd sizes on purpose: 4:2:0 codecs pad and crop back.
    with Image.open(SHARED / "data" / "kodak" / "kodim23.png") as im:
        return np.asarray(im.convert("RGB"))[101:196, 203:334]


@pytest.mark.parametrize(
    "name", ["vlmpress", "jpeg", "webp", "avif", "hevc", "sharp-webp", "sharp-avif", "semantic-avif", "sharp-avif-importance"]
)
def test_every_codec_round_trips_with_growing_size_and_quality(name, photo, tmp_path):
    codec = all_codecs()[name]
    assert codec.available() is None, codec.available()
    out = codec.run({"img": photo}, tmp_path)
    sizes = [out[("img", s)].bytes for s in codec.settings]
    quality = [psnr(photo, out[("img", s)].image) for s in codec.settings]
    for s in codec.settings:
        assert out[("img", s)].image.shape == photo.shape
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1], sizes
    assert quality[-1] > quality[0] + 2, quality
    assert quality[-1] > 26, quality


def _fake_tool(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_vvc_path_follows_the_documented_command_line(photo, tmp_path, monkeypatch):
    """VVenC/VVdeC cannot be installed here; stand-ins that copy the raw 10-bit YCbCr through check
    our half of the path for real: the arguments, padding to 8, 4:2:0 10-bit conversion and crop."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.txt"
    copy = (
        "import shutil, sys\n"
        f"open({str(log)!r}, 'a').write(' '.join(sys.argv) + '\\n')\n"
        "a = sys.argv\n"
        "src = a[a.index('{src}') + 1]\n"
        "shutil.copy(src, a[a.index('-o') + 1])\n"
    )
    _fake_tool(bin_dir / "vvencapp", copy.replace("{src}", "-i"))
    _fake_tool(bin_dir / "vvdecapp", copy.replace("{src}", "-b"))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    codec = VvcCodec()
    assert codec.available() is None
    out = codec.run({"img": photo}, tmp_path)
    h, w = photo.shape[:2]
    calls = log.read_text().splitlines()
    enc = [c for c in calls if "vvencapp" in c]
    assert len(enc) == len(codec.settings)
    assert f"-s {w + (-w % 8)}x{h + (-h % 8)}" in enc[0]
    for flag in ("-c yuv420_10", "--preset medium", "--intraperiod 1", "-f 1", "-q 51"):
        assert flag in enc[0], (flag, enc[0])
    assert any("-d 10" in c for c in calls if "vvdecapp" in c)
    rec = out[("img", codec.settings[0])]
    assert rec.image.shape == photo.shape
    # A lossless stand-in leaves only the 4:2:0 10-bit conversion: close to the original.
    assert psnr(photo, rec.image) > 33


def test_vvc_is_skipped_with_a_reason_when_absent(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "vvencapp" in VvcCodec().available()


def test_codec_names_include_checkpoint_built_editor_packages():
    assert type(codec_named("sharp-avif")) is type(all_codecs()["sharp-avif"])
    c = codec_named("checkpoint:restoration=runs/a/last.pt+preeditor=runs/b/last.pt")
    assert isinstance(c, CheckpointEditorCodec) and c.name == "checkpoint"
    assert c.roles == {"restoration": Path("runs/a/last.pt"), "preeditor": Path("runs/b/last.pt")}
    assert codec_named("checkpoint:decoder=x.pt") is None
    assert codec_named("checkpoint:") is None
    assert codec_named("nope") is None
