"""``load_dataset(spec)``: a dataset of any source as one ImageDataset. numpy + Pillow only.

Specs:
  ``fashion-mnist:train|val|test|train-full``  Debian's dataset-fashion-mnist (``fashion-mnist`` = train)
  ``path/to/folder``                           one subfolder per class holding .jpg/.png files
  ``path/to/file.npz``                         ``images`` uint8 NxHxW[xC], optional ``labels``, ``classes``

Every batch goes through :mod:`edgecnn.data.preprocess`, the same path the runtime uses.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.data.image_dataset import ImageDataset
from edgecnn.errors import DataError


def load_dataset(spec: str, root: str | os.PathLike | None = None) -> ImageDataset:
    """A dataset from a spec string (see the module docstring)."""
    spec = str(spec)
    name, _, split = spec.partition(":")
    if name.lower() in ("fashion-mnist", "fashion_mnist", "fmnist"):
        from edgecnn.data.fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

        split = split or "train"
        images, labels = load_fashion_mnist(split, root=root)
        return ImageDataset(classes=list(FASHION_MNIST_CLASSES), labels=labels, images=images,
                            spec=f"fashion-mnist:{split}", meta={"channels": 1})
    path = Path(spec)
    if any(len(os.fsencode(part)) > 255 for part in path.parts):  # the OS cannot look it up
        raise DataError(f"dataset {spec[:40]}... ({len(spec)} characters) not found: a path part "
                        f"is over 255 bytes")
    if spec.lower().endswith(".npz"):
        from edgecnn.data.npz import load_npz

        return load_npz(path)
    if path.is_dir():
        from edgecnn.data.folder import load_image_folder

        return load_image_folder(path)
    if path.exists():
        raise DataError(f"cannot use {spec} as a dataset: expected a folder with one subfolder "
                        f"per class, a .npz file or fashion-mnist:train|val|test")
    raise DataError(f"dataset {spec!r} not found: expected fashion-mnist:train|val|test, an "
                    f"image folder (one subfolder per class) or a .npz file")


__all__ = ["ImageDataset", "load_dataset"]
