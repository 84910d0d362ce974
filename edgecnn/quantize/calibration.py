"""Calibration data: where the activation ranges of an INT8 model come from.

``load_calibration(spec, preprocess, input_size_chw)`` accepts

- a dataset spec understood by :func:`edgecnn.data.datasets.load_dataset`
  (``fashion-mnist:train``, an image folder with one subfolder per class, ``images.npz``);
- a flat folder of images (no class subfolders);
- ``file.npy``: uint8 images NxHxW[xC] (preprocessed here) or float32 NCHW that is
  already preprocessed (used as is, shape checked);
- a recipe ``calibration/*.toml`` with ``spec``, ``samples`` and ``seed``.

``samples`` images are drawn with ``seed``; preprocessing is always the bundle's
:class:`~edgecnn.manifest.Preprocess`, never specified again here. The set's sha256
(float32 bytes + shape) keys the calibration cache. numpy + Pillow only.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecnn.errors import CalibrationError, DataError
from edgecnn.manifest import Preprocess

DEFAULT_SAMPLES = 512
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class CalibrationSet:
    data: np.ndarray  # float32 NCHW, preprocessed
    sha256: str
    spec: str
    count: int
    seed: int = 0
    recipe: dict[str, Any] = field(default_factory=dict)  # the recipe file's content, if any

    def batches(self, batch_size: int):
        for start in range(0, self.count, batch_size):
            yield self.data[start:start + batch_size]

    def describe(self) -> dict[str, Any]:
        return {"spec": self.spec, "count": self.count, "seed": self.seed, "sha256": self.sha256,
                "shape": list(self.data.shape[1:])}


CALIB_BATCH = 32
CALIB_BATCH_ELEMENTS = 1 << 20  # input elements per calibration batch: every intermediate
# tensor of the batch is held at once, so 224x224 models calibrate 6 images at a time


def calib_batch_size(input_size_chw) -> int:
    c, h, w = input_size_chw
    return max(1, min(CALIB_BATCH, CALIB_BATCH_ELEMENTS // max(1, c * h * w)))


def calibration_hash(data: np.ndarray) -> str:
    """sha256 of the float32 array's shape and bytes (C order)."""
    arr = np.ascontiguousarray(data, dtype=np.float32)
    h = hashlib.sha256()
    h.update(repr(tuple(int(s) for s in arr.shape)).encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def load_calibration(spec: str | os.PathLike, preprocess: Preprocess,
                     input_size_chw: Sequence[int], samples: int | None = DEFAULT_SAMPLES,
                     seed: int = 0) -> CalibrationSet:
    """Load ``samples`` calibration inputs drawn with ``seed`` from ``spec`` (see module doc)."""
    if spec is None or str(spec).strip() == "":
        raise CalibrationError("no calibration data given; pass --calib with an image folder, "
                               "fashion-mnist:train, a .npy/.npz file or a calibration/*.toml recipe")
    chw = tuple(int(v) for v in input_size_chw)
    if len(chw) != 3:
        raise CalibrationError(f"input_size_chw must be (C, H, W), got {input_size_chw}")
    if samples is not None and samples <= 0:
        raise CalibrationError(f"calibration samples must be positive, got {samples}")
    spec_s = str(spec)
    recipe: dict[str, Any] = {}
    if spec_s.lower().endswith(".toml"):
        recipe = read_recipe(spec_s)
        spec_s, samples, seed = recipe["spec"], recipe.get("samples", samples), recipe.get("seed", seed)
    if spec_s.lower().endswith(".npy"):
        data = _from_npy(Path(spec_s), preprocess, chw, samples, seed)
    else:
        data = _from_dataset(spec_s, preprocess, samples, seed)
    _check_array(data, chw, spec_s)
    return CalibrationSet(data=data, sha256=calibration_hash(data), spec=spec_s, count=len(data),
                          seed=seed, recipe=recipe)


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """A calibration recipe: ``spec`` (required), ``samples``, ``seed``; relative paths resolve
    against the recipe's folder."""
    from edgecnn._toml import tomllib

    p = Path(path)
    if not p.is_file():
        raise CalibrationError(f"calibration recipe {p} does not exist")
    try:
        d = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"calibration recipe {p} is not valid TOML: {exc}") from None
    unknown = set(d) - {"spec", "samples", "seed", "description"}
    if unknown:
        raise CalibrationError(f"calibration recipe {p}: unknown keys {sorted(unknown)} "
                               f"(allowed: spec, samples, seed, description)")
    if not isinstance(d.get("spec"), str) or not d["spec"]:
        raise CalibrationError(f"calibration recipe {p} needs spec = \"<folder|dataset|file>\"")
    for key in ("samples", "seed"):
        if key in d and (not isinstance(d[key], int) or isinstance(d[key], bool) or d[key] < 0
                         or (key == "samples" and d[key] == 0)):
            raise CalibrationError(f"calibration recipe {p}: {key} must be a positive integer")
    spec = d["spec"]
    if ":" not in spec.split("/")[0] and not Path(spec).is_absolute():
        spec = str((p.parent / spec))
    return {**d, "spec": spec}


def _from_dataset(spec: str, preprocess: Preprocess, samples: int | None, seed: int) -> np.ndarray:
    from edgecnn.data.datasets import load_dataset
    from edgecnn.data.preprocess import preprocess_batch

    path = Path(spec)
    flat = path.is_dir() and not any(c.is_dir() and not c.name.startswith(".") for c in path.iterdir())
    try:
        if flat:  # a plain folder of images: no labels needed to calibrate
            files = sorted(f for f in path.iterdir()
                           if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
            if not files:
                raise CalibrationError(f"calibration folder {spec} holds no images "
                                       f"({', '.join(IMAGE_SUFFIXES)})")
            files = _draw(files, samples, seed)
            return preprocess_batch(files, preprocess)
        ds = load_dataset(spec)
        if len(ds) == 0:
            raise CalibrationError(f"calibration data {spec} is empty")
        ds = ds.subset(samples, seed)
        return np.concatenate([x for x, _ in ds.batches(preprocess, 256)])
    except DataError as exc:
        raise CalibrationError(f"calibration data {spec}: {exc}") from None


def _draw(items: list, samples: int | None, seed: int) -> list:
    if samples is None or samples >= len(items):
        return items
    idx = np.sort(np.random.default_rng(seed).choice(len(items), size=samples, replace=False))
    return [items[i] for i in idx]


def _from_npy(path: Path, preprocess: Preprocess, chw: tuple, samples: int | None,
              seed: int) -> np.ndarray:
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"cannot read {path} as .npy (truncated or not a numpy file?): "
                               f"{exc}") from None
    if arr.size == 0 or arr.ndim == 0 or len(arr) == 0:
        raise CalibrationError(f"calibration file {path} is empty (shape {arr.shape})")
    if arr.dtype == np.uint8:  # raw images NxHxW[xC]: preprocess like any image
        from edgecnn.data.image_dataset import ImageDataset

        if not (arr.ndim == 3 or (arr.ndim == 4 and arr.shape[3] in (1, 3))):
            raise CalibrationError(f"{path}: uint8 images must be NxHxW or NxHxWx{{1,3}}, "
                                   f"got shape {arr.shape}")
        if arr.ndim == 4 and arr.shape[3] == 1:
            arr = arr[..., 0]
        ds = ImageDataset(classes=[], images=arr, spec=str(path),
                          meta={"channels": 1 if arr.ndim == 3 else 3}).subset(samples, seed)
        try:
            return np.concatenate([x for x, _ in ds.batches(preprocess, 256)])
        except DataError as exc:
            raise CalibrationError(f"calibration data {path}: {exc}") from None
    if arr.dtype != np.float32:
        raise CalibrationError(
            f"{path}: calibration arrays must be uint8 images (NxHxW[xC]) or float32 inputs "
            f"already preprocessed (NxCxHxW); got {arr.dtype}. Convert with "
            f"arr.astype(np.float32) only if the values are already normalised")
    if arr.ndim != 4 or tuple(arr.shape[1:]) != chw:
        raise CalibrationError(f"{path}: float32 calibration data must have shape Nx{chw[0]}x"
                               f"{chw[1]}x{chw[2]} (the model input), got {arr.shape}")
    idx = np.asarray(_draw(list(range(len(arr))), samples, seed))
    return np.ascontiguousarray(arr[idx])


def _check_array(data: np.ndarray, chw: tuple, spec: str) -> None:
    if data.dtype != np.float32 or data.ndim != 4:
        raise CalibrationError(f"calibration data {spec} did not become float32 NCHW "
                               f"(got {data.dtype} {data.shape})")
    if len(data) == 0:
        raise CalibrationError(f"calibration data {spec} is empty")
    if tuple(data.shape[1:]) != chw:
        raise CalibrationError(
            f"calibration data {spec} gives inputs of shape {tuple(data.shape[1:])} but the model "
            f"takes {chw}; check the model's --input-size and the bundle's preprocessing")
    if not np.isfinite(data).all():
        raise CalibrationError(f"calibration data {spec} holds NaN or infinite values")
