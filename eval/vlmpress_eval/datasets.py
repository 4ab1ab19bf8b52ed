"""Image sets for the harness. Any folder works (`--images DIR`); an ImageNet synset at the start of
a file name (`n01440764_tench.JPEG`) gives the true label, otherwise only agreement is measured."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vlmpress_train.images import list_images

SHARED = Path(__file__).resolve().parents[3] / "shared"
SYNSET = re.compile(r"^(n\d{8})")


@dataclass(frozen=True)
class Item:
    key: str  # unique, file-name safe
    path: Path
    label: int | None  # index in a 1001-way head (background at 0), when known
    question: str | None = None  # LVLM mode: asked about the original and every reconstruction
    answer: str | None = None
    #: rendered text: the true lines and their boxes (from the folder's truth.json)
    lines: tuple[tuple[str, tuple[int, int, int, int]], ...] | None = None


def named_set(name: str) -> Path:
    """The development sets under ../shared/data by name, or a folder path."""
    p = SHARED / "data" / name
    return p if p.is_dir() else Path(name)


def load_items(folder: Path, synsets_file: Path, limit: int | None = None, stride: int = 1) -> list[Item]:
    truth_file = folder / "truth.json"
    truth = json.loads(truth_file.read_text()) if truth_file.exists() else {}
    synsets = synsets_file.read_text().split() if synsets_file.exists() else []
    index = {s: i + 1 for i, s in enumerate(synsets)}
    paths = list_images(folder)[::stride]
    if limit:
        paths = paths[:limit]
    items = []
    for i, p in enumerate(paths):
        m = SYNSET.match(p.name)
        key = f"{i:05d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", p.stem)[:40]
        lines = tuple((ln["text"], tuple(ln["box"])) for ln in truth[p.name]) if p.name in truth else None
        items.append(Item(key, p, index.get(m.group(1)) if m else None, lines=lines))
    return items


def items_from_questions(questions: list, synsets_file: Path) -> list[Item]:
    """LVLM mode: one item per question (an image may carry several questions)."""
    synsets = synsets_file.read_text().split() if synsets_file.exists() else []
    index = {s: i + 1 for i, s in enumerate(synsets)}
    items = []
    for i, q in enumerate(questions):
        m = SYNSET.match(q.image.name)
        key = f"{i:05d}_" + re.sub(r"[^A-Za-z0-9_-]", "_", q.image.stem)[:40]
        items.append(Item(key, q.image, index.get(m.group(1)) if m else None, q.question, q.answer))
    return items


#: imagenet-dev photos of things that usually carry text (signs, screens, packaging, vehicles, shops):
#: the OCR-on-photos set, scored against each engine's reading of the original
TEXT_PHOTO_CLASSES = (
    "barbershop",
    "beer_bottle",
    "book_jacket",
    "bookshop",
    "cash_machine",
    "confectionery",
    "digital_clock",
    "envelope",
    "hand-held_computer",
    "jersey",
    "laptop",
    "lotion",
    "menu",
    "monitor",
    "odometer",
    "packet",
    "parking_meter",
    "pill_bottle",
    "police_van",
    "racer",
    "remote_control",
    "school_bus",
    "scoreboard",
    "slot",
    "street_sign",
    "sweatshirt",
    "tobacco_shop",
    "toyshop",
)


def text_photo_items(folder: Path, synsets_file: Path) -> list[Item]:
    return [it for it in load_items(folder, synsets_file) if it.path.stem.split("_", 1)[-1] in TEXT_PHOTO_CLASSES]
