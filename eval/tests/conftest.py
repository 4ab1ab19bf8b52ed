import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "eval"), str(ROOT / "training")]
SHARED = ROOT.parent / "shared"


def fake_vvc_on_path(bin_dir: Path, monkeypatch) -> None:
    """Put the VVenC/VVdeC stand-ins (eval/tests/fake_vvc) first on the PATH, run by this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in ("vvencapp", "vvdecapp"):
        body = (Path(__file__).parent / "fake_vvc" / name).read_text().split("\n", 1)[1]
        tool = bin_dir / name
        tool.write_text(f"#!{sys.executable}\n{body}")
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
