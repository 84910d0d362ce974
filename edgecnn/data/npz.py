"""Datasets stored as .npz arrays: ``images`` uint8 NxHxW[xC], optional ``labels``, ``classes``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from edgecnn.data.image_dataset import ImageDataset
from edgecnn.errors import DataError


def load_npz(path: str | os.PathLike):
    path = Path(path)
    if not path.is_file():
        raise DataError(f".npz dataset {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read {path} as .npz: {exc}") from None
    if "images" not in arrays:
        raise DataError(f"{path} has no 'images' array (it has {sorted(arrays) or 'nothing'}); "
                        f"save with np.savez(path, images=uint8 NxHxW[xC], labels=..., classes=...)")
    images = arrays["images"]
    if images.dtype != np.uint8:
        raise DataError(f"{path}: 'images' must be uint8, got {images.dtype}")
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] == 3)):
        raise DataError(f"{path}: 'images' has shape {images.shape}; expected NxHxW (grayscale) "
                        f"or NxHxWx3 (RGB)")
    if len(images) == 0:
        raise DataError(f"{path}: 'images' is empty")
    labels = arrays.get("labels")
    if labels is not None:
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{path}: 'labels' must be N={len(images)} integers, got "
                            f"{labels.dtype} {labels.shape}")
        if labels.min() < 0:
            raise DataError(f"{path}: 'labels' holds negative values")
    if "classes" in arrays:
        classes = [str(c) for c in arrays["classes"].tolist()]
    else:
        n = int(labels.max()) + 1 if labels is not None else 0
        classes = [str(i) for i in range(n)]
    if labels is not None and int(labels.max()) >= len(classes):
        raise DataError(f"{path}: label {int(labels.max())} has no entry in 'classes' "
                        f"({len(classes)} names)")
    return ImageDataset(classes=classes, labels=labels, images=images, spec=str(path),
                        meta={"channels": 1 if images.ndim == 3 else 3})
