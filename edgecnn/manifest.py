"""The bundle manifest: dataclasses <-> manifest.json. Standard library only.

A bundle is one folder per model holding one or more artifacts (``model.onnx``,
``model.int8.onnx``, ``model.fp16.tflite``, ``model.fp16.engine`` ...) and one
``manifest.json`` that describes all of them. :meth:`Manifest.from_dict`
validates everything it reads, because bundles travel over networks and SD cards.
"""

from __future__ import annotations

import dataclasses
import json
import math
import posixpath
from dataclasses import dataclass, field
from typing import Any

from edgecnn import catalog
from edgecnn.errors import ManifestError

SCHEMA_VERSION = 2
# 1: before Preprocess had resize/crop (a schema-1 manifest reads as one without them)
READABLE_SCHEMAS = (1, 2)
MANIFEST_NAME = "manifest.json"

LAYOUTS = ("NCHW", "NHWC")
PRECISIONS = catalog.PRECISIONS
DTYPES = ("float32", "float16", "int8", "uint8", "int32", "int64")


def _expect(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ManifestError(f"manifest.json: {where}: {what}")


def _typed(d: dict, key: str, types: type | tuple, where: str, optional: bool = False) -> Any:
    if key not in d:
        _expect(optional, where, f"missing key '{key}'")
        return None
    value = d[key]
    if optional and value is None:
        return None
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in _as_tuple(types))
    names = "/".join(t.__name__ for t in _as_tuple(types))
    _expect(ok, where, f"'{key}' must be {names}, got {type(value).__name__}")
    return value


def _positive(d: dict, key: str, where: str) -> float:
    value = float(_typed(d, key, (int, float), where))
    _expect(math.isfinite(value) and value > 0, where, f"'{key}' must be a finite number > 0")
    return value


def _as_tuple(types: type | tuple) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _check_keys(d: Any, allowed: set[str], where: str) -> None:
    _expect(isinstance(d, dict), where, f"must be an object, got {type(d).__name__}")
    unknown = set(d) - allowed
    _expect(not unknown, where, f"unknown keys {sorted(unknown)}")


@dataclass
class QuantParams:
    """Affine quantisation of an integer tensor: real = scale * (q - zero_point)."""

    scale: float
    zero_point: int

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "QuantParams":
        _check_keys(d, {"scale", "zero_point"}, where)
        return cls(scale=_positive(d, "scale", where), zero_point=_typed(d, "zero_point", int, where))


@dataclass
class TensorSpec:
    """One model input or output. ``shape`` uses -1 for the dynamic batch dimension."""

    name: str
    shape: list[int]
    dtype: str = "float32"
    layout: str | None = None  # NCHW / NHWC for images, None for logits
    quant: QuantParams | None = None

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "TensorSpec":
        _check_keys(d, {"name", "shape", "dtype", "layout", "quant"}, where)
        name = _typed(d, "name", str, where)
        shape = _typed(d, "shape", list, where)
        _expect(all(isinstance(s, int) and not isinstance(s, bool) and s >= -1 for s in shape),
                where, "shape must be a list of ints (-1 for dynamic)")
        dtype = _typed(d, "dtype", str, where)
        _expect(dtype in DTYPES, where, f"dtype must be one of {DTYPES}, got {dtype!r}")
        layout = _typed(d, "layout", str, where, optional=True)
        _expect(layout is None or layout in LAYOUTS, where, f"layout must be one of {LAYOUTS}")
        quant = d.get("quant")
        return cls(name=name, shape=shape, dtype=dtype, layout=layout,
                   quant=QuantParams.from_dict(quant, f"{where}.quant") if quant is not None else None)


@dataclass
class Preprocess:
    """How an image becomes the model input; shared by calibration, evaluation and the runtime.

    The image is converted to ``channels`` (1 = grayscale 'L', 3 = RGB), resized with
    ``interpolation`` (``resize``: [N] = the shorter side to N, aspect kept; [H, W] = exactly
    HxW; None = exactly to ``size``), center-cropped to ``crop`` = [H, W] when set (then equal
    to ``size``), scaled by ``scale`` (1/255 maps uint8 to [0, 1]), then normalised per
    channel: (x - mean) / std. ``size`` = [height, width] is always the model input.
    """

    size: list[int]
    channels: int = 3
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    scale: float = 1.0 / 255.0
    channel_order: str = "RGB"  # "RGB", "BGR" or "L"
    interpolation: str = "bilinear"  # nearest | bilinear | bicubic
    resize: list[int] | None = None  # schema 2
    crop: list[int] | None = None  # schema 2

    def problem(self) -> str | None:
        """Why this resize/crop/size combination cannot produce the model input, or None."""
        size, resize, crop = list(self.size), self.resize, self.crop
        if crop is not None and list(crop) != size:
            return (f"crop {_hw(crop)} differs from the input size {_hw(size)}; the crop is "
                    f"the model input")
        if resize is None:
            return None
        if len(resize) == 1:
            if crop is None:
                return (f"resizing the shorter side to {resize[0]} keeps the aspect ratio, so "
                        f"the image needs a crop: add --crop {_hw(size)}")
            if max(crop) > resize[0]:
                return (f"crop {_hw(crop)} is larger than the resized shorter side {resize[0]}; "
                        f"use a crop <= {resize[0]} or a larger --resize")
            return None
        if crop is None:
            return None if list(resize) == size else (
                f"resize {_hw(resize)} differs from the input size {_hw(size)}; add --crop "
                f"{_hw(size)} or resize to {_hw(size)}")
        if crop[0] > resize[0] or crop[1] > resize[1]:
            return f"crop {_hw(crop)} is larger than the resize {_hw(resize)}"
        return None

    def describe(self) -> str:
        """One line for people: geometry, channels, normalisation."""
        if self.resize is None:
            geometry = f"resize to {_hw(self.size)}"
        elif len(self.resize) == 1:
            geometry = f"resize shorter side to {self.resize[0]}"
        else:
            geometry = f"resize to {_hw(self.resize)}"
        if self.crop is not None:
            geometry += f", center crop {_hw(self.crop)}"
        return (f"{self.channels}x{_hw(self.size)} {self.channel_order}: {geometry} "
                f"({self.interpolation}), x*{self.scale:.6g}, mean {_nums(self.mean)}, "
                f"std {_nums(self.std)}")

    @classmethod
    def from_dict(cls, d: Any, where: str = "preprocess") -> "Preprocess":
        _check_keys(d, {f.name for f in dataclasses.fields(cls)}, where)
        size = _typed(d, "size", list, where)
        _expect(_ints(size, (2,)), where, "size must be [height, width] with positive ints")
        channels = _typed(d, "channels", int, where)
        _expect(channels in (1, 3), where, "channels must be 1 or 3")
        mean = _typed(d, "mean", list, where)
        std = _typed(d, "std", list, where)
        for key, values in (("mean", mean), ("std", std)):
            _expect(len(values) == channels and all(isinstance(v, (int, float)) for v in values),
                    where, f"{key} must hold {channels} numbers")
        _expect(all(math.isfinite(v) for v in mean + std), where, "mean/std must be finite")
        _expect(all(v > 0 for v in std), where, "std values must be > 0")
        order = _typed(d, "channel_order", str, where)
        _expect(order in ("RGB", "BGR", "L"), where, "channel_order must be RGB, BGR or L")
        interp = _typed(d, "interpolation", str, where)
        _expect(interp in ("nearest", "bilinear", "bicubic"), where,
                "interpolation must be nearest, bilinear or bicubic")
        resize = _typed(d, "resize", list, where, optional=True)
        _expect(resize is None or _ints(resize, (1, 2)), where,
                "resize must be [shorter side] or [height, width] with positive ints")
        crop = _typed(d, "crop", list, where, optional=True)
        _expect(crop is None or _ints(crop, (2,)), where,
                "crop must be [height, width] with positive ints")
        pre = cls(size=size, channels=channels, mean=[float(v) for v in mean],
                  std=[float(v) for v in std], scale=_positive(d, "scale", where),
                  channel_order=order, interpolation=interp, resize=resize, crop=crop)
        why = pre.problem()
        _expect(why is None, where, why or "")
        return pre


def _ints(values: list, lengths: tuple[int, ...]) -> bool:
    return len(values) in lengths and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)


def _hw(values) -> str:
    return "x".join(str(v) for v in values)


def _nums(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"


@dataclass
class Artifact:
    """One file in the bundle that a backend runs."""

    file: str  # relative to the bundle folder, no directories
    sha256: str
    backend: str
    precision: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    size_bytes: int = 0
    # backend-specific facts: parity report, calibration, build plan, engine metadata ...
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def variant(self) -> str:
        """What the artifact is shaped for when its precision has several graphs ("cpu" |
        "tensorrt" for ONNX Runtime int8), else "". Read from ``details["shaped_for"]``; an
        artifact without it (older bundles) is the catalogue's unlabelled variant."""
        e = catalog.BACKENDS.get(self.backend)
        if e is None or len(e.variants_of(self.precision)) < 2:
            return ""
        shaped = self.details.get("shaped_for")
        if isinstance(shaped, str) and shaped in e.variants_of(self.precision):
            return shaped
        return e.unlabelled.get(self.precision, e.preferred_variant(self.precision))

    @property
    def precision_name(self) -> str:
        """'int8' for the preferred variant, 'int8-trt' for the TensorRT-shaped ONNX graph."""
        e = catalog.BACKENDS.get(self.backend)
        return e.precision_name(self.precision, self.variant) if e else self.precision

    @property
    def key(self) -> str:
        """Short name used on the command line, e.g. 'onnxruntime:int8' (the CPU graph) or
        'onnxruntime:int8-trt' (the TensorRT-shaped graph)."""
        return f"{self.backend}:{self.precision_name}"

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Artifact":
        _check_keys(d, {f.name for f in dataclasses.fields(cls)}, where)
        file = _typed(d, "file", str, where)
        _expect(is_safe_filename(file), where,
                f"file {file!r} must be a plain file name inside the bundle folder")
        sha = _typed(d, "sha256", str, where)
        _expect(len(sha) == 64 and all(c in "0123456789abcdef" for c in sha), where,
                "sha256 must be 64 lowercase hex digits")
        backend = _typed(d, "backend", str, where)
        known = tuple(catalog.BACKENDS)
        _expect(backend in known, where, f"backend must be one of {known}, got {backend!r}")
        precision = _typed(d, "precision", str, where)
        _expect(precision in PRECISIONS, where, f"precision must be one of {PRECISIONS}")
        inputs = _typed(d, "inputs", list, where)
        outputs = _typed(d, "outputs", list, where)
        _expect(len(inputs) >= 1 and len(outputs) >= 1, where, "needs at least one input and output")
        size = _typed(d, "size_bytes", int, where, optional=True) or 0
        details = _typed(d, "details", dict, where, optional=True) or {}
        return cls(
            file=file, sha256=sha, backend=backend, precision=precision,
            inputs=[TensorSpec.from_dict(t, f"{where}.inputs[{i}]") for i, t in enumerate(inputs)],
            outputs=[TensorSpec.from_dict(t, f"{where}.outputs[{i}]") for i, t in enumerate(outputs)],
            size_bytes=size, details=details,
        )


@dataclass
class Manifest:
    model: str  # zoo name or user model name
    preprocess: Preprocess
    labels: list[str]
    artifacts: list[Artifact] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # how the model was obtained
    tool_versions: dict[str, str] = field(default_factory=dict)
    created: str = ""  # ISO 8601 UTC
    schema_version: int = SCHEMA_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def find(self, backend: str | None = None, precision: str | None = None,
             variant: str | None = None) -> Artifact:
        """The artifact matching backend, precision and variant (fp32 preferred when the
        precision is unset). ``precision`` may carry the variant ('int8-trt'); without one, the
        preferred variant when the bundle has it (the CPU int8 graph), else any (an older
        bundle's model.int8.onnx, the TensorRT-shaped graph, as before)."""
        from edgecnn.errors import BundleError, UnknownTargetError

        if precision is not None:
            precision, suffix = catalog.split_precision(precision)
            variant = variant or suffix
        hits = [a for a in self.artifacts
                if (backend is None or a.backend == backend)
                and (precision is None or a.precision == precision)]
        if variant:
            kept, why = [], None
            for a in hits:
                try:
                    if a.variant == catalog.BACKENDS[a.backend].resolve_variant(a.precision,
                                                                                variant):
                        kept.append(a)
                except UnknownTargetError as exc:  # this backend has no such variant
                    why = why or str(exc)
            if not kept and why is not None:
                raise BundleError(why)
            hits = kept

        def rank(a: Artifact) -> tuple[int, int]:
            order = catalog.BACKENDS[a.backend].variants_of(a.precision)
            return (PRECISIONS.index(a.precision) if precision is None else 0,
                    order.index(a.variant) if a.variant in order else len(order))

        hits.sort(key=rank)
        if not hits:
            have = ", ".join(a.key for a in self.artifacts) or "none"
            want = f"{backend or '*'}:{precision or '*'}" + (f"-{variant}" if variant else "")
            raise BundleError(f"bundle has no artifact {want} (it has: {have}); "
                              f"run 'edgecnn export' with that target and precision")
        return hits[0]

    def replace_artifact(self, artifact: Artifact) -> None:
        """Add ``artifact``, replacing any earlier one with the same file name."""
        self.artifacts = [a for a in self.artifacts if a.file != artifact.file] + [artifact]

    def to_dict(self) -> dict[str, Any]:
        # what this edgecnn writes is the current schema, also for a bundle read as an older one
        return {**dataclasses.asdict(self), "schema_version": SCHEMA_VERSION}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: Any) -> "Manifest":
        where = "manifest"
        _check_keys(d, {f.name for f in dataclasses.fields(cls)}, where)
        version = _typed(d, "schema_version", int, where)
        _expect(version in READABLE_SCHEMAS, where,
                f"schema_version {version} is not supported (this edgecnn reads "
                f"{', '.join(map(str, READABLE_SCHEMAS))}); re-export the bundle or upgrade edgecnn")
        labels = _typed(d, "labels", list, where)
        _expect(len(labels) >= 1 and all(isinstance(x, str) for x in labels), where,
                "labels must be a non-empty list of strings")
        artifacts = [Artifact.from_dict(a, f"artifacts[{i}]")
                     for i, a in enumerate(_typed(d, "artifacts", list, where))]
        files = [a.file for a in artifacts]
        _expect(len(set(files)) == len(files), where, "artifact file names must be unique")
        return cls(
            model=_typed(d, "model", str, where),
            preprocess=Preprocess.from_dict(_typed(d, "preprocess", dict, where)),
            labels=labels,
            artifacts=artifacts,
            source=_typed(d, "source", dict, where, optional=True) or {},
            tool_versions={str(k): str(v) for k, v in
                           (_typed(d, "tool_versions", dict, where, optional=True) or {}).items()},
            created=_typed(d, "created", str, where, optional=True) or "",
            schema_version=version,
        )

    @classmethod
    def from_json(cls, text: str) -> "Manifest":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(f"manifest.json is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def is_safe_filename(name: str) -> bool:
    """A plain file name: no directories, no '..', no absolute path, no hidden tricks."""
    return (bool(name) and name == posixpath.basename(name) and "\\" not in name
            and name not in (".", "..") and not name.startswith(".") and "\x00" not in name)
