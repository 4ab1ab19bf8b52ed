import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED, fake_vvc_on_path
from PIL import Image
from vlmpress_eval.codecs import CheckpointEditorCodec, VvcCodec, Y4mHeader, all_codecs, codec_named, read_y4m_header
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


def test_vvc_runs_the_command_lines_current_vvenc_and_vvdec_accept(photo, tmp_path, monkeypatch):
    """Stand-ins with the real apps' option sets (an unknown option fails as it does in VVdeC 3.x)
    check our half of the path for real: arguments, padding to 8, 4:2:0 10-bit conversion, the y4m
    the decoder writes at the stream's bit depth, and the crop back."""
    fake_vvc_on_path(tmp_path / "bin", monkeypatch)
    codec = VvcCodec()
    assert codec.available() is None
    out = codec.run({"img": photo}, tmp_path)
    h, w = photo.shape[:2]
    enc = VvcCodec.encode_args(tmp_path / "x.yuv", w + (-w % 8), h + (-h % 8), 51, tmp_path / "x.266")
    assert enc[enc.index("-s") + 1] == f"{w + (-w % 8)}x{h + (-h % 8)}" and enc[enc.index("-c") + 1] == "yuv420_10"
    assert VvcCodec.decode_args(tmp_path / "x.266", tmp_path / "x.y4m")[1:] == [
        "-b",
        str(tmp_path / "x.266"),
        "-o",
        str(tmp_path / "x.y4m"),
    ]
    sizes = [out[("img", q)].bytes for q in codec.settings]
    quality = [psnr(photo, out[("img", q)].image) for q in codec.settings]
    assert all(out[("img", q)].image.shape == photo.shape for q in codec.settings)
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1], sizes
    # QP 23 leaves a step of about 3 8-bit levels plus the 4:2:0 10-bit conversion.
    assert quality[-1] > quality[0] + 10 and quality[-1] > 33, quality


def test_the_stand_ins_reject_what_the_real_apps_reject(tmp_path, monkeypatch):
    """The decoder option this harness used to pass (`-d 10`) fails in the stand-in as in VVdeC 3.x,
    so the stand-ins would have caught it."""
    fake_vvc_on_path(tmp_path / "bin", monkeypatch)
    old = subprocess.run(["vvdecapp", "-b", "x.266", "-o", "x.yuv", "-d", "10"], capture_output=True, text=True)
    assert old.returncode == 255 and "unknown argument: -d" in old.stderr and "cannot parse command line" in old.stderr
    enc = subprocess.run(["vvencapp", "-i", "x.yuv", "--bogus", "1"], capture_output=True, text=True)
    assert enc.returncode != 0 and "--bogus" in enc.stderr


def test_a_decoder_that_writes_no_y4m_is_a_clear_error(tmp_path):
    raw = tmp_path / "rec.y4m"
    raw.write_bytes(bytes(96))
    with pytest.raises(RuntimeError, match="not a y4m file"):
        read_y4m_header(raw)
    (tmp_path / "ok.y4m").write_bytes(b"YUV4MPEG2 W16 H8 F50:1 Ip C420p10\nFRAME\n" + bytes(384))
    assert read_y4m_header(tmp_path / "ok.y4m") == Y4mHeader(16, 8, "420p10")


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
