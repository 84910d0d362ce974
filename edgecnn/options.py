"""Typed options passed between layers: what ``edgecnn export`` accepts and what quantization
needs. Standard library only, so every layer (backends, quantize, bench, the CLI) can read them.

The CLI and the Python API use the same names: ``ExportOptions`` fields are the ``export``
command's options. The five quantization fields travel down as one :class:`QuantizeOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from edgecnn.catalog import PRECISIONS
from edgecnn.errors import CalibrationError, ModelLoadError, ProfileError

CALIB_METHODS = ("minmax", "entropy", "percentile")
# the built-in dataset names of edgecnn.data.datasets (a leaf cannot import data/)
BUILTIN_DATASETS = ("fashion-mnist", "fashion_mnist", "fmnist")
BUILTIN_SPLITS = ("train", "val", "test")


def split_list(value: str | Sequence[str] | None) -> list[str]:
    """``"onnx,tflite"`` or ``["onnx", "tflite"]`` -> ``["onnx", "tflite"]``: stripped, empty
    items dropped, duplicates dropped (first kept)."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value]
    return list(dict.fromkeys(i.strip() for i in items if i.strip()))


def data_spec_problem(spec: str, option: str, kinds: str) -> str | None:
    """Why the data spec ``spec`` (given as ``option``) cannot be read, or None. Only what is
    known without reading it: a built-in dataset with a known split, or a path that exists."""
    name, sep, split = str(spec).partition(":")
    if name.lower() in BUILTIN_DATASETS:
        if sep and split not in BUILTIN_SPLITS:
            return (f"{option} {spec}: unknown split {split!r}; use "
                    f"{'|'.join(f'fashion-mnist:{s}' for s in BUILTIN_SPLITS)}")
        return None
    if not Path(spec).exists():
        return f"{option} {spec} does not exist; pass {kinds}"
    return None


@dataclass
class BatchProfile:
    """Dynamic-batch range an artifact must serve (TensorRT optimisation profile)."""

    min: int = 1
    opt: int = 1
    max: int = 32

    def __post_init__(self) -> None:
        if not (1 <= self.min <= self.opt <= self.max):
            raise ProfileError(f"batch profile needs 1 <= min <= opt <= max, got "
                               f"min={self.min} opt={self.opt} max={self.max}")


@dataclass(frozen=True)
class QuantizeOptions:
    """INT8 calibration and the accuracy budget, shared by every backend that quantizes."""

    calib: str | None = None  # folder, fashion-mnist:train, file.npz/.npy, recipe.toml
    calib_samples: int = 512
    calib_method: str = "minmax"  # minmax | entropy | percentile
    max_accuracy_drop: float | None = None  # points of top-1
    eval: str | None = None  # labelled held-out data for the accuracy budget
    seed: int = 0

    def check(self, what: str = "int8", require_calib: bool = True) -> None:
        """Raise CalibrationError for settings no INT8 export can use (before any work): the
        options among themselves first, then whether the data they name exists."""
        if require_calib and not self.calib:
            raise CalibrationError(f"{what} needs calibration data: pass --calib (an image "
                                   f"folder, fashion-mnist:train, a .npy/.npz file or a "
                                   f"calibration/*.toml recipe)")
        if self.calib_samples < 1:
            raise CalibrationError(f"--calib-samples must be >= 1, got {self.calib_samples}")
        if (self.calib_method or "").lower() not in CALIB_METHODS:
            raise CalibrationError(f"unknown calibration method {self.calib_method!r}; choose "
                                   f"one of {', '.join(CALIB_METHODS)}")
        if self.max_accuracy_drop is not None:
            if not (math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
                raise CalibrationError("max_accuracy_drop must be >= 0 (points of top-1)")
            if not self.eval:
                raise CalibrationError("--max-accuracy-drop needs --eval with labelled held-out "
                                       "data (e.g. fashion-mnist:val)")
        self.check_paths()

    def check_paths(self) -> None:
        """Raise CalibrationError for a --calib or --eval that names no data (before any work)."""
        if self.calib:
            why = data_spec_problem(self.calib, "--calib", "an image folder, fashion-mnist:train, "
                                    "a .npy/.npz file or a calibration/*.toml recipe")
            if why:
                raise CalibrationError(why)
        if self.eval:
            why = data_spec_problem(self.eval, "--eval", "an image folder with one subfolder per "
                                    "class, a .npz file or fashion-mnist:val")
            if why:
                raise CalibrationError(why)


@dataclass
class ExportOptions:
    """Everything ``edgecnn export`` accepts; the CLI and the Python API use these names."""

    # backend name (onnx | tflite | tensorrt), a profile name or file; several: "onnx,tflite"
    # or a list. Every target gets every precision, in one bundle.
    target: str | Sequence[str] = "onnx"
    precision: str | Sequence[str] | None = None  # fp32 | fp16 | int8, several: "fp32,int8";
    # None = each target profile's default
    out: Path | None = None  # bundle folder; default ./bundles/<model>
    weights: str | None = None  # state dict / checkpoint for a zoo model
    input_size: tuple[int, int, int] | None = None  # (C, H, W) where the model does not say
    num_classes: int | None = None
    # calibration / quantization (INT8): see QuantizeOptions
    calib: str | None = None
    calib_samples: int = 512
    calib_method: str = "minmax"
    max_accuracy_drop: float | None = None
    eval: str | None = None
    # TFLite
    layout: str | None = None  # NHWC (tflite default) | NCHW
    int8_io: bool = False
    # TensorRT
    trt_version: str | None = None  # e.g. "10.3"; default from the profile
    batch: BatchProfile | None = None  # None: the target profile's, else BatchProfile()
    workspace_mb: int | None = None
    # parity
    parity_samples: int = 8
    seed: int = 0
    threads: int | None = None

    @property
    def targets(self) -> list[str]:
        """The targets named, in order (at least one)."""
        targets = split_list(self.target)
        if not targets:
            raise ProfileError("--target is empty; name a backend (onnx, tflite, tensorrt) or a "
                               "profile from 'edgecnn targets'")
        return targets

    @property
    def precisions(self) -> list[str | None]:
        """The precisions named, in order; ``[None]`` (the profile's) when none was."""
        precisions = split_list(self.precision)
        unknown = [p for p in precisions if p not in PRECISIONS]
        if unknown:
            raise ProfileError(f"unknown precision {unknown[0]!r}; use one or several of "
                               f"{', '.join(PRECISIONS)}, e.g. --precision fp32,int8")
        return precisions or [None]

    def single(self, target: str, precision: str | None) -> "ExportOptions":
        """These options for one (target, precision) of a multi-target export."""
        return replace(self, target=target, precision=precision)

    def check(self) -> None:
        """Raise an EdgeCNNError for options no export can use (before any work): counts,
        the weights file, the calibration and evaluation data."""
        for name in ("calib_samples", "parity_samples"):
            if getattr(self, name) < 1:
                raise ProfileError(f"--{name.replace('_', '-')} must be >= 1, got "
                                   f"{getattr(self, name)}")
        for name in ("threads", "workspace_mb"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ProfileError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        if self.weights is not None and not Path(self.weights).is_file():
            what = "is not a file" if Path(self.weights).exists() else "does not exist"
            raise ModelLoadError(f"weights file {self.weights} {what}; pass a state dict or an "
                                 f"edgecnn checkpoint (.pt) with --weights")
        self.quantize.check_paths()

    @property
    def quantize(self) -> QuantizeOptions:
        return QuantizeOptions(calib=self.calib, calib_samples=self.calib_samples,
                               calib_method=self.calib_method,
                               max_accuracy_drop=self.max_accuracy_drop, eval=self.eval,
                               seed=self.seed)
