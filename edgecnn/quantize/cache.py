"""Activation ranges cached in the bundle as ``calibration.<method>.json``.

The key is everything the ranges depend on: the fp32 model (sha256 of model.onnx), the
calibration set (sha256 of its float32 data), the method and the preprocessing. A rerun
with the same key reuses the ranges; any change recalibrates. One file serves every INT8 graph
of the bundle (the TensorRT graph and the CPU graph): it holds the threshold and the observed
(min, max) of every tensor either quantizes; a cache that lacks a tensor a graph needs (one
written before the CPU graph existed) is recomputed. Stdlib + numpy only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from edgecnn.quantize.ranges import ActivationRanges

CACHE_FORMAT = "edgecnn-calibration-v1"


def cache_name(method: str) -> str:
    return f"calibration.{method}.json"


@dataclass(frozen=True)
class CacheKey:
    model_sha256: str
    calibration_sha256: str
    method: str
    preprocess_sha256: str

    @classmethod
    def make(cls, model_sha256: str, calibration_sha256: str, method: str, preprocess) -> "CacheKey":
        pre = preprocess if isinstance(preprocess, dict) else dataclasses.asdict(preprocess)
        pre_hash = hashlib.sha256(json.dumps(pre, sort_keys=True).encode()).hexdigest()
        return cls(model_sha256, calibration_sha256, method, pre_hash)


def load_cached(path: Path, key: CacheKey,
                tensors: Sequence[str] = ()) -> ActivationRanges | None:
    """The cached ranges when ``path`` holds ranges for exactly ``key`` covering ``tensors``;
    else None."""
    if not path.is_file():
        return None
    try:
        d: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        if d.get("format") != CACHE_FORMAT or d.get("key") != dataclasses.asdict(key) \
                or d.get("ranges_sha256") != _ranges_sha256(d["ranges"]):
            return None  # another key, or ranges changed after they were written
        ranges = ActivationRanges.from_dict(d["ranges"])
        return ranges if ranges.covers(tensors) else None
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # a damaged cache is recomputed, never trusted


def _ranges_sha256(ranges: Any) -> str:
    return hashlib.sha256(json.dumps(ranges, sort_keys=True).encode()).hexdigest()


def save_cache(path: Path, key: CacheKey, ranges: ActivationRanges, extra: dict | None = None) -> None:
    payload = {"format": CACHE_FORMAT, "key": dataclasses.asdict(key), "ranges": ranges.to_dict(),
               "ranges_sha256": _ranges_sha256(ranges.to_dict()), **(extra or {})}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def cached_ranges(fp32_path: Path, calib, method: str, preprocess, cache_in: Path,
                  cache_out: Callable[[], Path], threads: int | None = None,
                  log=print, tensors: Sequence[str] | None = None) -> tuple[ActivationRanges, str]:
    """Activation ranges of ``fp32_path`` on ``calib`` (a CalibrationSet) with ``method`` for
    ``tensors`` (default: the inputs of Conv/Gemm/MatMul): read from ``cache_in`` when it holds
    exactly this (model, data, method, preprocess) and every tensor, else computed and written
    to the path ``cache_out()`` gives. That path is asked for only after
    the read: a bundle writer's path for a new file unlinks the old one it would replace.
    Returns (ranges, "reused" | "computed")."""
    from edgecnn.bundle import sha256_file
    from edgecnn.quantize.calibration import calib_batch_size
    from edgecnn.quantize.ranges import collect_ranges

    key = CacheKey.make(sha256_file(fp32_path), calib.sha256, method, preprocess)
    ranges = load_cached(cache_in, key, tensors or ())
    if ranges is not None:
        log(f"reusing cached calibration {cache_in.name} ({method}, {len(ranges.amax)} tensors, "
            f"calibration set {calib.sha256[:12]})")
        return ranges, "reused"
    bs = calib_batch_size(calib.data.shape[1:])
    ranges = collect_ranges(fp32_path, list(calib.batches(bs)), method, threads=threads,
                            tensors=tensors)
    out = cache_out()
    save_cache(out, key, ranges, {"calibration": calib.describe()})
    log(f"calibrated {len(ranges.amax)} activations ({method}); ranges in {out.name}")
    return ranges, "computed"
