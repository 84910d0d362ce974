"""The one dataset type of every source: images in memory or files on disk, with labels.
numpy + Pillow only.

Every image file is checked when it is read: unreadable files, 16-bit/float images and CMYK
images raise a DataError naming the file, instead of being silently converted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from edgecnn.data.preprocess import (keeps_size, load_image, normalize_uint8,
                                     resize_and_crop, to_array)
from edgecnn.errors import DataError
from edgecnn.manifest import Preprocess

_GRAY_MODES = ("L", "1", "LA")
_COLOR_MODES = ("RGB", "RGBA", "P", "YCbCr")


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
            if same_mode and chunk.shape[1:3] == (h, w) and keeps_size(spec):
                return np.ascontiguousarray(chunk)
        out = np.empty((stop - start, h, w) + (() if spec.channels == 1 else (3,)), np.uint8)
        for j, i in enumerate(range(start, stop)):
            img = self.image(i)
            img = img.convert("L" if spec.channels == 1 else "RGB")
            out[j] = np.asarray(resize_and_crop(img, spec), dtype=np.uint8)
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


def open_checked(path: str | os.PathLike, channels: int = 3):
    """Open one image as 'L' or 'RGB', refusing modes that cannot be converted faithfully."""
    from edgecnn.data.preprocess import _pil

    Image = _pil()
    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {path} is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; re-save it as PNG or JPEG "
                        f"or remove it from the folder") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise DataError(f"image {path} has mode {img.mode!r} (16/32-bit); save it as 8-bit "
                        f"grayscale ('L') or RGB")
    if img.mode == "CMYK":
        raise DataError(f"image {path} is CMYK; an RGB image is expected (convert it, e.g. "
                        f"with an image editor or Pillow's ImageCms, then save as RGB)")
    if img.mode in _GRAY_MODES:
        return img.convert("L") if channels == 1 or img.mode != "L" else img
    if img.mode in _COLOR_MODES:
        return img.convert("RGB") if img.mode != "RGB" else img
    raise DataError(f"image {path} has unsupported mode {img.mode!r}; save it as 8-bit "
                    f"grayscale or RGB")
