"""The codecs under test. Each one turns an RGB image into real bytes and back at a list of
settings chosen to span the same bits-per-pixel range (about 0.05 to 2 bpp on photos).

- vlmpress: the product CLI in batch mode (real bitstream files, not estimated rates);
- JPEG, WebP and AVIF: Pillow (libjpeg-turbo, libwebp, libavif), 4:2:0, the encoders' defaults otherwise;
- HEVC: x265 through ffmpeg, one all-intra frame, YCbCr 4:2:0 8-bit, preset medium, tune psnr (no
  psycho-visual tuning, as in objective codec comparisons), constant QP;
- VVC: VVenC/VVdeC command line tools when on the PATH (YCbCr 4:2:0 10-bit, one all-intra frame,
  preset medium, constant QP), padded to a multiple of 8 and cropped back; skipped otherwise.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from .datasets import SHARED

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Coded:
    """One image through one codec at one setting."""

    bytes: int
    image: np.ndarray  # H x W x 3 uint8, the decoded reconstruction


class Codec(Protocol):
    name: str
    #: the settings swept, in increasing rate order
    settings: list[float]

    def available(self) -> str | None:
        """None when usable, else why not (shown to the user)."""

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        """Code every image at every setting."""


class PillowCodec:
    def __init__(self, name: str, fmt: str, settings: list[float], **options: object) -> None:
        self.name, self.fmt, self.settings, self.options = name, fmt, settings, options

    def available(self) -> str | None:
        from PIL import features

        feature = {"JPEG": "jpg", "WEBP": "webp", "AVIF": "avif"}[self.fmt]
        return None if features.check(feature) else f"Pillow was built without {self.fmt}"

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        out: dict[tuple[str, float], Coded] = {}
        for key, img in images.items():
            for q in self.settings:
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format=self.fmt, quality=int(q), **self.options)
                with Image.open(io.BytesIO(buf.getvalue())) as im:
                    out[(key, q)] = Coded(buf.tell(), np.asarray(im.convert("RGB")))
        return out


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, stdin=subprocess.DEVNULL)


def _even_pad(img: np.ndarray, multiple: int) -> np.ndarray:
    """Edge-replicate to a multiple of `multiple` (4:2:0 and CTU alignment); cropped back after decoding."""
    h, w = img.shape[:2]
    return np.pad(img, ((0, -h % multiple), (0, -w % multiple), (0, 0)), mode="edge")


class HevcCodec:
    name = "hevc"
    settings = [51.0, 47.0, 43.0, 39.0, 35.0, 31.0, 27.0, 23.0]  # x265 QP; lower QP = more bytes

    def available(self) -> str | None:
        if not shutil.which("ffmpeg"):
            return "ffmpeg is not installed (apt-get install ffmpeg)"
        probe = subprocess.run(["ffmpeg", "-hide_banner", "-encoders"], capture_output=True, text=True)
        return None if "libx265" in probe.stdout else "ffmpeg has no libx265 encoder"

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        out: dict[tuple[str, float], Coded] = {}
        for key, img in images.items():
            h, w = img.shape[:2]
            src = work / f"{key}.hevc-src.png"
            Image.fromarray(_even_pad(img, 2)).save(src)
            for qp in self.settings:
                bit = work / f"{key}.qp{int(qp)}.hevc"
                rec = work / f"{key}.qp{int(qp)}.hevc.png"
                # BT.709 limited range both ways, so colour conversion is not part of the codec's error.
                _ffmpeg(
                    "-i",
                    str(src),
                    "-vf",
                    "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p",
                    "-c:v",
                    "libx265",
                    "-preset",
                    "medium",
                    "-tune",
                    "psnr",
                    "-x265-params",
                    f"qp={int(qp)}:keyint=1:log-level=error",
                    "-frames:v",
                    "1",
                    "-f",
                    "hevc",
                    str(bit),
                )
                _ffmpeg("-i", str(bit), "-vf", "scale=in_color_matrix=bt709:in_range=tv,format=rgb24", "-frames:v", "1", str(rec))
                with Image.open(rec) as im:
                    out[(key, qp)] = Coded(bit.stat().st_size, np.asarray(im.convert("RGB"))[:h, :w])
        return out


class VvcCodec:
    """VVenC/VVdeC through the options every VVenC 1.x easy mode and VVdeC 2.x/3.x accept (read from
    their sources' option tables; docs/evaluation.md): raw YCbCr 4:2:0 10-bit into `vvencapp`, and a
    `.y4m` out of `vvdecapp`, whose header gives the decoded size and bit depth (VVdeC writes the
    stream's own bit depth and has no option to choose another)."""

    name = "vvc"
    settings = [51.0, 47.0, 43.0, 39.0, 35.0, 31.0, 27.0, 23.0]  # QP (same grid as HEVC)

    def available(self) -> str | None:
        missing = [t for t in ("vvencapp", "vvdecapp", "ffmpeg") if not shutil.which(t)]
        return (
            None
            if not missing
            else f"{' and '.join(missing)} not on the PATH (VVC is skipped; build VVenC/VVdeC from source to include it)"
        )

    @staticmethod
    def encode_args(yuv: Path, width: int, height: int, qp: float, bit: Path) -> list[str]:
        # One frame is always intra: no intra-period option (periods independent of the GOP came in 2022).
        frame = ["-s", f"{width}x{height}", "-c", "yuv420_10", "-r", "1", "-f", "1"]
        return ["vvencapp", "-i", str(yuv), *frame, "--preset", "medium", "-q", str(int(qp)), "-o", str(bit)]

    @staticmethod
    def decode_args(bit: Path, rec_y4m: Path) -> list[str]:
        # The .y4m extension turns VVdeC's y4m output on (there is no bit-depth option to pass).
        return ["vvdecapp", "-b", str(bit), "-o", str(rec_y4m)]

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        out: dict[tuple[str, float], Coded] = {}
        for key, img in images.items():
            h, w = img.shape[:2]
            padded = _even_pad(img, 8)
            ph, pw = padded.shape[:2]
            src_png, yuv = work / f"{key}.vvc-src.png", work / f"{key}.vvc-src.yuv"
            Image.fromarray(padded).save(src_png)
            _ffmpeg("-i", str(src_png), "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p10le", "-f", "rawvideo", str(yuv))
            for qp in self.settings:
                stem = work / f"{key}.qp{int(qp)}"
                bit, rec_y4m, rec = stem.with_suffix(".266"), stem.with_suffix(".rec.y4m"), stem.with_suffix(".vvc.png")
                _tool(self.encode_args(yuv, pw, ph, qp, bit))
                _tool(self.decode_args(bit, rec_y4m))
                header = read_y4m_header(rec_y4m)
                if (header.width, header.height) != (pw, ph) or not header.colorspace.startswith("420"):
                    raise RuntimeError(f"vvdecapp wrote {header} for a {pw}x{ph} 4:2:0 stream: {rec_y4m}")
                # ffmpeg takes the size and sample format from the y4m header.
                _ffmpeg("-i", str(rec_y4m), "-vf", "scale=in_color_matrix=bt709:in_range=tv,format=rgb24", "-frames:v", "1", str(rec))
                with Image.open(rec) as im:
                    out[(key, qp)] = Coded(bit.stat().st_size, np.asarray(im.convert("RGB"))[:h, :w])
        return out


@dataclass(frozen=True)
class Y4mHeader:
    width: int
    height: int
    colorspace: str  # the C tag: 420, 420p10, ... (420 when absent, as the format defines)


def read_y4m_header(path: Path) -> Y4mHeader:
    """The stream header of a YUV4MPEG2 file; a clear error for anything else (e.g. a raw .yuv
    written by a decoder too old to write y4m)."""
    with path.open("rb") as f:
        line = f.readline(1024)
    if not line.startswith(b"YUV4MPEG2 ") or not line.endswith(b"\n"):
        raise RuntimeError(f"{path} is not a y4m file: the vvdecapp on the PATH predates y4m output (VVdeC 2.x/3.x have it)")
    tags = {t[:1]: t[1:] for t in line.decode("ascii").split()[1:]}
    try:
        return Y4mHeader(int(tags["W"]), int(tags["H"]), tags.get("C", "420"))
    except (KeyError, ValueError) as e:
        raise RuntimeError(f"{path}: y4m header without a valid size: {line!r}") from e


def _tool(args: list[str]) -> None:
    """Run a codec app; its own message (e.g. an unknown option) in the error when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        said = (done.stderr.strip() or done.stdout.strip())[-800:]
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {said}")


class VlmpressCodec:
    """The shipped model through `bin/vlmpress.js` in batch mode: one process, one model load. With
    `codec` set, a classical codec inside the VLMP container exactly as the gateway makes it (sharp):
    what the policy may choose instead of the learned codec, so it is measured the same way. `model`
    names the package (e.g. one editor package of several); `models_dirs` replaces the bundled ones."""

    def __init__(
        self,
        models_dirs: list[Path] | None = None,
        codec: str | None = None,
        settings: list[float] | None = None,
        name: str | None = None,
        model: str | None = None,
    ) -> None:
        self.cli = ROOT / "bin" / "vlmpress.js"
        self.models_dirs = models_dirs or []
        self.codec = codec
        self.model = model
        self.name = name or (f"sharp-{codec}" if codec else "vlmpress")
        self.settings = settings or [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.5, 8.0]

    def available(self) -> str | None:
        if not shutil.which("node"):
            return "node is not installed"
        return None if (ROOT / "dist" / "src" / "cli" / "vlmpress.js").exists() else "the CLI is not built (npm run build)"

    def _cli(self, *args: str) -> list[dict]:
        extra = [a for d in self.models_dirs for a in ("--models-dir", str(d))]
        r = subprocess.run(["node", str(self.cli), *args, *extra], capture_output=True, text=True)
        lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        failed = [line for line in lines if "error" in line]
        if r.returncode != 0 or failed:
            raise RuntimeError(f"vlmpress {args[0]} failed: {failed or r.stderr.strip()}")
        return lines

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        src = work / "vlmpress-src"
        src.mkdir(exist_ok=True)
        files = []
        for key, img in images.items():
            f = src / f"{key}.png"
            Image.fromarray(img).save(f)
            files.append(str(f))
        codec = ["--codec", self.codec] if self.codec else []
        if self.model:
            codec += ["--model", self.model]
        encoded = self._cli(
            "encode",
            *files,
            "--out-dir",
            str(work / f"{self.name}-bits"),
            "-q",
            ",".join(f"{q:g}" for q in self.settings),
            "--threads",
            "2",
            *codec,
        )
        decoded = self._cli(
            "decode", *[e["output"] for e in encoded], "--out-dir", str(work / f"{self.name}-rec"), "--format", "png", "--threads", "2"
        )
        out: dict[tuple[str, float], Coded] = {}
        for e, d in zip(encoded, decoded):
            key = Path(e["input"]).stem
            with Image.open(d["output"]) as im:
                out[(key, float(e["quality"]))] = Coded(Path(e["output"]).stat().st_size, np.asarray(im.convert("RGB")))
        return out


class EditedCodec:
    """An image edit in front of a gateway codec: the baseline pre-editors that cannot run in the
    gateway (they need the receiver's gradients). The edit is made once per image; the inner codec
    then codes the edited image at each of its settings, exactly as for the unedited one."""

    def __init__(self, name: str, inner: VlmpressCodec, edit_factory: Callable[[], Callable[[np.ndarray], np.ndarray]]) -> None:
        self.name, self.inner, self.edit_factory = name, inner, edit_factory
        self.settings = inner.settings
        self._edit: Callable[[np.ndarray], np.ndarray] | None = None

    def available(self) -> str | None:
        return self.inner.available()

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        if self._edit is None:
            self._edit = self.edit_factory()
        edited = {key: self._edit(img) for key, img in images.items()}
        sub = work / self.name
        sub.mkdir(exist_ok=True)
        return self.inner.run(edited, sub)


class CheckpointEditorCodec(VlmpressCodec):
    """Semantic AVIF with an editor package the product does not ship, made in the work folder from
    training checkpoints (role -> checkpoint): the ablation rows (the pre-editor alone, both networks),
    coded and decoded by the product CLI exactly as the shipped package is."""

    def __init__(self, name: str, settings: list[float], roles: dict[str, Path]) -> None:
        super().__init__(codec="semantic-avif", settings=settings, name=name, model=name)
        self.roles = roles
        self._package: tempfile.TemporaryDirectory[str] | None = None

    def run(self, images: dict[str, np.ndarray], work: Path) -> dict[tuple[str, float], Coded]:
        # Exported once per codec object (ONNX export and its parity checks take seconds), not per chunk.
        if self._package is None:
            from vlmpress_train.preedit.export import export_package

            self._package = tempfile.TemporaryDirectory(prefix=f"vlmpress-{self.name}-")
            export_package(self.roles, self._package.name, self.name)
            self.models_dirs = [ROOT / "models" / LEARNED_PACKAGE, Path(self._package.name)]
        return super().run(images, work)


def importance_baseline() -> Callable[[np.ndarray], np.ndarray]:
    from vlmpress_train.preedit.importance import importance_edit
    from vlmpress_train.teachers.tflite_graph import TFLiteClassifier

    teacher = TFLiteClassifier(SHARED / "models" / "tf2_mobilenet_v2_1.0_224_ptq.tflite").eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return lambda img: importance_edit(teacher, img)


LEARNED_PACKAGE = "vlmp-mbv2-cpu-v1"
#: the first pre-editor (vlmp-semantic-avif-v1, shipped until the restoration network measured better)
PREEDITOR_CHECKPOINT = ROOT / "training" / "checkpoints" / "preeditor-v1.pt"
#: the shipped restoration network
RESTORATION_CHECKPOINT = ROOT / "models" / "vlmp-semantic-avif-v2" / "restoration.pt"
AVIF_SETTINGS = [5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 70.0, 85.0]


def all_codecs() -> dict[str, Codec]:
    return {
        "vlmpress": VlmpressCodec(),
        "jpeg": PillowCodec("jpeg", "JPEG", [5, 10, 20, 30, 45, 60, 75, 90]),
        "webp": PillowCodec("webp", "WEBP", [2, 10, 25, 40, 55, 70, 85, 95], method=6),
        "avif": PillowCodec("avif", "AVIF", [5, 15, 25, 35, 45, 55, 70, 85], subsampling="4:2:0", speed=6),
        "hevc": HevcCodec(),
        "vvc": VvcCodec(),
        # classical codecs as the gateway makes them (sharp, in the VLMP container), for the policy
        "sharp-avif": VlmpressCodec(codec="avif", settings=AVIF_SETTINGS),
        # AVIF from avifenc with libaom's screen-content tools, the gateway's text encoder (a child process;
        # the `sharp-` prefix names the gateway's classical codecs, this one is not made by sharp)
        "sharp-avif-screen": VlmpressCodec(codec="avif-screen", settings=AVIF_SETTINGS),
        # the teacher-gradient importance map, then sharp AVIF (the bar for the learned pre-editor)
        "sharp-avif-importance": EditedCodec(
            "sharp-avif-importance", VlmpressCodec(codec="avif", settings=AVIF_SETTINGS), importance_baseline
        ),
        # the shipped editor package around sharp's AVIF, through the product CLI
        "semantic-avif": VlmpressCodec(codec="semantic-avif", settings=AVIF_SETTINGS, name="semantic-avif"),
        # ablation rows: the first pre-editor alone, and the pre-editor with the restoration network
        "preedit-avif": CheckpointEditorCodec("preedit-avif", AVIF_SETTINGS, {"preeditor": PREEDITOR_CHECKPOINT}),
        "preedit-restore-avif": CheckpointEditorCodec(
            "preedit-restore-avif", AVIF_SETTINGS, {"preeditor": PREEDITOR_CHECKPOINT, "restoration": RESTORATION_CHECKPOINT}
        ),
        "sharp-webp": VlmpressCodec(codec="webp", settings=[2, 10, 25, 40, 55, 70, 85, 95]),
        "sharp-jpeg": VlmpressCodec(codec="jpeg", settings=[5, 10, 20, 30, 45, 60, 75, 90]),
    }


def codec_named(name: str) -> Codec | None:
    """A codec of `all_codecs()`, or an editor package built from training checkpoints:
    `checkpoint:restoration=runs/x/last.pt` (roles preeditor and/or restoration, joined by `+`), for
    measuring a candidate before it ships. Its rows are named `checkpoint`."""
    if not name.startswith("checkpoint:"):
        return all_codecs().get(name)
    roles = dict(part.split("=", 1) for part in name[len("checkpoint:") :].split("+") if "=" in part)
    if not roles or not set(roles) <= {"preeditor", "restoration"}:
        return None
    return CheckpointEditorCodec("checkpoint", AVIF_SETTINGS, {role: Path(path) for role, path in roles.items()})


def temporary_workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="vlmpress-eval-")
