import json

import numpy as np
import pytest
from vlmpress_eval.metrics import char_accuracy
from vlmpress_eval.ocr import PaddleOcr, Tesseract
from vlmpress_eval.run import main
from vlmpress_eval.textset import render, write_set


@pytest.fixture(scope="module")
def paddle():
    return PaddleOcr()


def test_char_accuracy():
    assert char_accuracy("total 12.50", "total  12.50\n") == 1.0
    assert char_accuracy("total 12.50", "tota1 12.50") == pytest.approx(1 - 1 / 11)
    assert char_accuracy("abc", "completely different") == 0.0


def test_text_set_is_deterministic_with_boxes_inside_the_image(tmp_path):
    a, lines_a = render("receipt", 14, 0)
    b, lines_b = render("receipt", 14, 0)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and lines_a == lines_b
    for line in lines_a:
        l, t, r, btm = line.box
        assert 0 <= l < r <= a.width and 0 <= t < btm <= a.height and line.text.strip()


@pytest.mark.parametrize("kind,size", [("document", 14), ("table", 11), ("receipt", 11), ("sign", 20)])
def test_both_engines_read_the_rendered_originals(paddle, kind, size):
    img, lines = render(kind, size, 0)
    arr = np.asarray(img)
    got = paddle.read_lines(arr, [ln.box for ln in lines])
    # PP-OCRv4 merges the wide gap of monospaced receipt lines ("item   12.50" -> "item12.50"): ~0.9 there.
    assert np.mean([char_accuracy(ln.text, g) for ln, g in zip(lines, got)]) > 0.85
    got = Tesseract().read_lines(arr, [ln.box for ln in lines])
    assert np.mean([char_accuracy(ln.text, g) for ln, g in zip(lines, got)]) > 0.9


def test_paddle_detects_and_reads_a_page(paddle):
    img, lines = render("sign", 28, 1)
    text = paddle.read(np.asarray(img))
    assert char_accuracy(" ".join(ln.text for ln in lines), text) > 0.9, text


def test_text_run_scores_ocr_against_the_truth(tmp_path):
    folder = write_set(tmp_path / "set", seeds=1)
    keep = {"receipt-11px-0.png"}
    for f in folder.glob("*.png"):
        if f.name not in keep:
            f.unlink()
    out = tmp_path / "res"
    assert main(["--images", str(folder), "--codecs", "jpeg", "--receivers", "", "--out", str(out)]) == 0
    result = json.loads((out / "points.json").read_text())
    assert result["originals"]["ocr_paddle"] > 0.85 and result["originals"]["ocr_tesseract"] > 0.9
    jpeg = result["points"]["jpeg"]
    assert jpeg[-1]["metrics"]["ocr_paddle"] > jpeg[0]["metrics"]["ocr_paddle"], "more bytes, better reading"
    assert "ocr_tesseract" in result["bd_rate"]
