"""One dataset type for every source, and ``load_dataset(spec)``. numpy + Pillow only.

Specs:
  ``fashion-mnist:train|val|test|train-full``  Debian's dataset-fashion-mnist (``fashion-mnist`` = train)
  ``path/to/folder``                           one subfolder per class holding .jpg/.png files
  ``path/to/file.npz``                         ``images`` uint8 NxHxW[xC], optional ``labels``, ``classes``

Every batch goes through :mod:`edgecnn.data.preprocess`, the same path the runtime uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from edgecnn.data.preprocess import load_image, normalize_uint8, to_array
from edgecnn.errors import DataError
from edgecnn.manifest import Preprocess


@dataclass
class ImageDataset:
    """Images in memory (``images``, uint8 NxHxW[xC]) or on disk (``paths``), with labels."""

    classes: list[str]
    labels: np.ndarray | None = None  # int64 N, or None for unlabelled data
    images: np.ndarray | None = None
    paths: list[Path] | None = None
    spec: str = ""  # where it came from, for messages and reports
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise DataError("an ImageDataset holds either images or paths")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if len(self.labels) != len(self):
                raise DataError(f"{self.spec or 'dataset'}: {len(self.labels)} labels for "
                                f"{len(self)} images")

    def __len__(self) -> int:
        return len(self.images) if self.images is not None else len(self.paths)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _take(self, idx: np.ndarray, suffix: str) -> "ImageDataset":
        return ImageDataset(
            classes=list(self.classes),
            labels=None if self.labels is None else self.labels[idx],
            images=None if self.images is None else self.images[idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            spec=f"{self.spec}{suffix}", meta=dict(self.meta))

    def subset(self, n: int | None, seed: int = 0) -> "ImageDataset":
        """``n`` images drawn without replacement with ``seed`` (kept in their original order)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise DataError(f"subset size must be positive, got {n}")
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self._take(idx, f"[{n} seed={seed}]")

    def head(self, n: int) -> "ImageDataset":
        return self if n >= len(self) else self._take(np.arange(n), f"[:{n}]")

    # -- pixels -----------------------------------------------------------------------
    def image(self, i: int):
        """Image ``i`` as a PIL image in its own mode ('L' or 'RGB')."""
        if self.images is not None:
            return load_image(self.images[i], 3 if self.images.ndim == 4 else 1)
        from edgecnn.data.folder import open_checked

        return open_checked(self.paths[i], self.meta.get("channels", 3))

    def uint8_images(self, spec: Preprocess, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Images [start:stop] converted and resized per ``spec``, still uint8 (N,H,W[,C]).

        Training keeps these on the side and normalises in torch with the same formula.
        """
        stop = len(self) if stop is None else min(stop, len(self))
        h, w = spec.size
        if self.images is not None:
            chunk = self.images[start:stop]
            same_mode = (chunk.ndim == 3) == (spec.channels == 1)
            if same_mode and chunk.shape[1:3] == (h, w):
                return np.ascontiguousarray(chunk)
        out = np.empty((stop - start, h, w) + (() if spec.channels == 1 else (3,)), np.uint8)
        from edgecnn.data.preprocess import _RESAMPLE

        for j, i in enumerate(range(start, stop)):
            img = self.image(i)
            img = img.convert("L" if spec.channels == 1 else "RGB")
            if img.size != (w, h):
                img = img.resize((w, h), resample=_RESAMPLE[spec.interpolation])
            out[j] = np.asarray(img, dtype=np.uint8)
        return out

    def batches(self, preprocess: Preprocess, batch_size: int = 256
                ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield (float32 NCHW, int64 labels | None) batches, preprocessed per ``preprocess``."""
        if batch_size <= 0:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        for start in range(0, len(self), batch_size):
            stop = min(start + batch_size, len(self))
            x = normalize_uint8(self.uint8_images(preprocess, start, stop), preprocess)
            y = None if self.labels is None else self.labels[start:stop]
            yield x, y

    def preprocess_one(self, i: int, spec: Preprocess) -> np.ndarray:
        """One image through the runtime's exact path (PIL image -> to_array)."""
        img = self.image(i).convert("L" if spec.channels == 1 else "RGB")
        return to_array(img, spec)

    def describe(self) -> str:
        shape = "x".join(map(str, self.images.shape[1:])) if self.images is not None else "files"
        return f"{self.spec}: {len(self)} images ({shape}), {self.num_classes} classes"


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
