"""Shared fixtures: paths to ../shared (development data) and the shipped model package."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TRAINING = Path(__file__).resolve().parents[1]
REPO = TRAINING.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(TRAINING))


def _packages(fmt: str) -> list[Path]:
    return sorted(p.parent for p in (REPO / "models").glob("*/manifest.json") if json.loads(p.read_text()).get("format") == fmt)


def shipped_package() -> Path:
    """The one codec model package in models/ (the manifest names it)."""
    found = _packages("vlmpress-model")
    if not found:
        raise FileNotFoundError("no model package under models/")
    return found[0]


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        raise FileNotFoundError(f"{SHARED} is missing: tests read the development data there")
    return SHARED


@pytest.fixture(scope="session")
def package() -> Path:
    return shipped_package()


@pytest.fixture(scope="session")
def editor_packages() -> list[Path]:
    """The shipped editor packages (semantic AVIF: pre-editor and/or restoration)."""
    found = _packages("vlmpress-editor")
    if not found:
        raise FileNotFoundError("no editor package under models/")
    return found


@pytest.fixture(scope="session")
def manifest(package: Path) -> dict:
    return json.loads((package / "manifest.json").read_text())
