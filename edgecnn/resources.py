"""Where the files the CLI needs live: device profiles (``targets/``), calibration recipes and
sample (``calibration/``) and the demo checkpoints (``weights/``). Standard library only.

One source of truth: the top-level folders of the source tree. A wheel build copies them into
the package as ``edgecnn/_shipped/<name>/`` (setup.py), so a source checkout (editable install)
reads the top-level folders and a wheel install reads its own copy.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SHIPPED = ("targets", "calibration", "weights")


def shipped_dir(name: str) -> Path:
    """The folder of shipped ``name`` files (one of SHIPPED)."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped folder {name!r}; one of {SHIPPED}")
    inside = PACKAGE_DIR / "_shipped" / name
    return inside if inside.is_dir() else PACKAGE_DIR.parent / name
