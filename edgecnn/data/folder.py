"""Image-folder datasets: one subfolder per class holding .jpg/.png files. Pillow only.

Every image is checked when it is read (:func:`edgecnn.data.image_dataset.open_checked`).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.data.image_dataset import ImageDataset
from edgecnn.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def load_image_folder(root: str | os.PathLike):
    """-> ImageDataset of file paths with labels from the class subfolder names (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    try:
        return _scan(root)
    except PermissionError as exc:  # the folder, or a class subfolder, may not be listed
        raise DataError(f"image folder {root} cannot be read ({exc.strerror}: "
                        f"{exc.filename}); check its permissions") from None


def _scan(root: Path):
    entries = sorted(p for p in root.iterdir() if _visible(p))
    class_dirs = [p for p in entries if p.is_dir()]
    if not class_dirs:
        loose = [p.name for p in entries if p.is_file()][:3]
        what = f" (it holds files such as {', '.join(loose)})" if loose else " (it is empty)"
        raise DataError(f"image folder {root} has no class subfolders{what}; expected "
                        f"{root}/<class name>/<image>.png, one subfolder per class")
    paths, labels, classes = [], [], []
    for d in class_dirs:
        files = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p)
                       and p.suffix.lower() in IMAGE_SUFFIXES)
        classes.append(d.name)
        paths.extend(files)
        labels.extend([len(classes) - 1] * len(files))
    if not paths:
        raise DataError(f"image folder {root} has class subfolders ({', '.join(classes[:5])}) "
                        f"but no images in them; expected {', '.join(IMAGE_SUFFIXES)} files")
    return ImageDataset(classes=classes, labels=labels, paths=paths, spec=str(root))
