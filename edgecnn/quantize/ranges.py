"""Activation ranges computed here, in numpy, for minmax | entropy | percentile.

ONNX Runtime's own calibrators are not used: its Entropy option produced the same scales
as MinMax in our lab because the histogram bin counts are not passed through. Instead the
fp32 model runs in onnxruntime with every tensor that INT8 ops read or write added as a
graph output, batch by batch:

- pass 1 records min / max / absmax of every tensor (``minmax`` stops here);
- pass 2 (entropy, percentile) fills a 2048-bin histogram of |x| on [0, absmax], exact
  zeros skipped (ReLU outputs are mostly 0; with them the KL search clips 16x too much);
- ``entropy`` picks the threshold that minimises KL(P || Q) between the clipped reference
  histogram and its 128-level quantized version (TensorRT's IInt8EntropyCalibrator2 recipe);
- ``percentile`` takes the 99.99th percentile of |x|;
- graph inputs always keep their observed absmax (minmax).

The result is one symmetric threshold ``amax`` per tensor (scale = amax / 127, zero point 0)
plus the observed (min, max). An asymmetric format (the CPU graph's uint8 activations) takes
:meth:`ActivationRanges.bounds`: the observed (min, max) clipped to [-amax, amax], so entropy
and percentile clip the same outliers on either side and a ReLU output stays [0, hi].

Which tensors: each Q/DQ scheme names the op types whose inputs it quantizes and those whose
outputs it quantizes too; :func:`scheme_tensors` is the union over the schemes to be built, so
one calibration pass (and one cached file) serves the TensorRT graph and the CPU graph.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import CalibrationError
from edgecnn.options import CALIB_METHODS
from edgecnn.progress import progress_bar
from edgecnn.runtime.ort import inference_session

QUANT_OPS = ("Conv", "Gemm", "MatMul")
METHODS = CALIB_METHODS
NUM_BINS = 2048
PERCENTILE = 99.99
_FLOAT = 1  # onnx.TensorProto.FLOAT


@dataclass
class ActivationRanges:
    """Symmetric thresholds per tensor, plus how they were obtained."""

    method: str
    amax: dict[str, float]
    stats: dict[str, tuple[float, float]] = field(default_factory=dict)  # observed (min, max)

    def bounds(self, tensor: str, symmetric: bool) -> tuple[float, float]:
        """(lowest, highest) a quantizer maps: [-amax, amax] when ``symmetric``, else the
        observed (min, max) clipped to [-amax, amax] (the whole observed range for minmax)."""
        a = float(self.amax[tensor])
        if symmetric or tensor not in self.stats:
            return -a, a
        lo, hi = self.stats[tensor]
        return max(float(lo), -a), min(float(hi), a)

    def covers(self, tensors: Sequence[str]) -> bool:
        return all(t in self.amax for t in tensors)

    def to_dict(self) -> dict:
        return {"method": self.method, "amax": self.amax,
                "stats": {k: list(v) for k, v in self.stats.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "ActivationRanges":
        return cls(method=str(d["method"]), amax={str(k): float(v) for k, v in d["amax"].items()},
                   stats={str(k): (float(v[0]), float(v[1])) for k, v in d.get("stats", {}).items()})


def check_method(method: str) -> str:
    m = (method or "").lower()
    if m not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}; choose one of "
                               f"{', '.join(METHODS)}")
    return m


def calibration_tensors(model, op_types: Sequence[str] = QUANT_OPS,
                        output_ops: Sequence[str] = ()) -> list[str]:
    """Float activations read by ``op_types`` nodes (graph inputs included), plus the float
    outputs of the ``op_types`` nodes that are also in ``output_ops``.

    The TensorRT graph takes inputs only: Q/DQ goes on the inputs of weighted layers (NVIDIA's
    placement); their outputs stay float so TensorRT can fuse Conv+bias+ReLU before the next
    Q. The CPU graph quantizes outputs too (integer kernels chain int8 to int8)."""
    return scheme_tensors(model, [(op_types, output_ops)])


def scheme_tensors(model, schemes: Sequence[tuple[Sequence[str], Sequence[str]]]) -> list[str]:
    """The union of :func:`calibration_tensors` over (op_types, output_ops) pairs, in graph
    order: what one calibration pass must observe for every graph built from it."""
    inits = {i.name for i in model.graph.initializer}
    consts = {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    float_names = _float_tensor_names(model)
    names: dict[str, None] = {}
    for node in model.graph.node:
        for op_types, output_ops in schemes:
            if node.op_type not in op_types:
                continue
            wanted = list(node.input)
            if node.op_type in output_ops:
                wanted += list(node.output)
            for t in wanted:
                if t and t not in inits and t not in consts and t in float_names:
                    names.setdefault(t, None)
    return list(names)


def _float_tensor_names(model) -> set[str]:
    onnx = require("onnx", "quantize", "calibrate an INT8 model")
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shape inference is best effort; fall back to declared
        inferred = model
    out = set()
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if vi.type.tensor_type.elem_type == _FLOAT:
            out.add(vi.name)
    return out


def _augmented_session(model_path: Path, tensors: list[str], tmpdir: str, threads: int | None):
    onnx = require("onnx", "quantize", "calibrate an INT8 model")
    require("onnxruntime", "ort", "calibrate an INT8 model")
    model = onnx.load(str(model_path))
    existing = {o.name for o in model.graph.output}
    for t in tensors:
        if t not in existing:
            model.graph.output.append(onnx.helper.make_tensor_value_info(t, _FLOAT, None))
    path = os.path.join(tmpdir, "augmented.onnx")
    onnx.save(model, path)
    # basic optimisations only: the layout transforms of the higher levels would rename or
    # fuse away the intermediate tensors the ranges are read from
    return inference_session(path, threads, optimization="basic")


def collect_ranges(model_path: str | os.PathLike, batches: Sequence[np.ndarray] | Iterable[np.ndarray],
                   method: str = "minmax", op_types: Sequence[str] = QUANT_OPS,
                   num_bins: int = NUM_BINS, percentile: float = PERCENTILE,
                   progress: bool = True, threads: int | None = None,
                   skip_zeros: bool = True,
                   tensors: Sequence[str] | None = None) -> ActivationRanges:
    """Run the fp32 model over ``batches`` and return per-tensor thresholds for ``method``
    (for ``tensors``, default: the inputs of the ``op_types`` nodes)."""
    onnx = require("onnx", "quantize", "calibrate an INT8 model")
    method = check_method(method)
    batches = list(batches)
    if not batches or sum(len(b) for b in batches) == 0:
        raise CalibrationError("calibration data is empty")
    model_path = Path(model_path)
    tensors = list(tensors) if tensors is not None else calibration_tensors(
        onnx.load(str(model_path), load_external_data=False), op_types)
    if not tensors:
        raise CalibrationError(f"{model_path.name} has no {'/'.join(op_types)} nodes to quantize")
    passes = 1 if method == "minmax" else 2
    with tempfile.TemporaryDirectory(prefix="edgecnn-calib-") as tmp:
        sess = _augmented_session(model_path, tensors, tmp, threads)
        input_name = sess.get_inputs()[0].name
        fixed = sess.get_inputs()[0].shape[0]
        if isinstance(fixed, int) and fixed > 0 and any(len(b) != fixed for b in batches):
            batches = _rechunk(np.concatenate(batches), fixed)
        lo = {t: np.inf for t in tensors}
        hi = {t: -np.inf for t in tensors}
        hists = {t: np.zeros(num_bins, np.float64) for t in tensors}
        with progress_bar(progress, f"calibrating ({method})", passes * len(batches)) as advance:
            for b in batches:
                for t, v in zip(tensors, sess.run(tensors, {input_name: b})):
                    if v.size:
                        lo[t] = min(lo[t], float(v.min()))
                        hi[t] = max(hi[t], float(v.max()))
                advance()
            absmax = {t: max(abs(lo[t]), abs(hi[t])) if np.isfinite(lo[t]) else 0.0 for t in tensors}
            if passes == 2:
                for b in batches:
                    for t, v in zip(tensors, sess.run(tensors, {input_name: b})):
                        if absmax[t] > 0:
                            a = np.abs(v)
                            h, _ = np.histogram(a[a > 0] if skip_zeros else a, bins=num_bins,
                                                range=(0.0, absmax[t]))
                            hists[t] += h
                    advance()
    graph_inputs = {i.name for i in sess.get_inputs()}
    amax: dict[str, float] = {}
    for t in tensors:
        if absmax[t] <= 0 or not np.isfinite(absmax[t]):
            amax[t] = 0.0  # all-zero tensor; the quantizer gives it scale 1
        elif method == "minmax" or t in graph_inputs:
            # the input's range is fixed by preprocessing; KL clipping would cut off the bright
            # pixels of Fashion-MNIST (it stops right above the background spike)
            amax[t] = absmax[t]
        elif method == "percentile":
            amax[t] = percentile_threshold(hists[t], absmax[t], percentile)
        else:
            amax[t] = entropy_threshold(hists[t], absmax[t])
    stats = {t: (float(lo[t]), float(hi[t])) for t in tensors if np.isfinite(lo[t])}
    return ActivationRanges(method=method, amax=amax, stats=stats)


def _rechunk(data: np.ndarray, size: int) -> list[np.ndarray]:
    """Batches of exactly ``size`` for a fixed-batch model; the last one is topped up with
    samples from the start (real samples, seen twice) rather than padding."""
    n = -(-len(data) // size) * size
    idx = np.arange(n) % len(data)
    return [data[idx[i:i + size]] for i in range(0, n, size)]


def percentile_threshold(hist: np.ndarray, absmax: float, percentile: float = PERCENTILE) -> float:
    """Upper edge of the bin where the cumulative histogram of |x| reaches ``percentile``."""
    total = hist.sum()
    if total <= 0:
        return float(absmax)
    cdf = np.cumsum(hist) / total
    idx = int(np.searchsorted(cdf, percentile / 100.0))
    width = absmax / len(hist)
    return float(min(idx + 1, len(hist)) * width)


def entropy_threshold(hist: np.ndarray, absmax: float, num_quant_bins: int = 128,
                      start_bin: int = 128) -> float:
    """TensorRT's KL-divergence threshold on a histogram of |x| over [0, absmax].

    For each candidate i: P = the first i bins with everything beyond clipped into bin
    i-1; Q = those i bins merged into 128 levels and spread back over P's non-empty bins;
    both smoothed (empty bins get a tiny mass, as in MXNet/TVM's port of the recipe)
    so an outlier bin gives a large but finite divergence. Threshold = the upper edge of
    the best i."""
    hist = np.asarray(hist, dtype=np.float64)
    nbins = len(hist)
    width = absmax / nbins
    if hist.sum() <= 0:
        return float(absmax)
    suffix = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # suffix[i] = sum(hist[i:])
    best_i, best_kl = nbins, np.inf
    for i in range(min(start_bin, nbins), nbins + 1):
        p = hist[:i].copy()
        p[i - 1] += suffix[i]  # outliers clipped into the last kept bin
        nonzero = p != 0
        group = (np.arange(i) * num_quant_bins) // i
        gsum = np.bincount(group, weights=hist[:i], minlength=num_quant_bins)
        gcnt = np.bincount(group, weights=nonzero, minlength=num_quant_bins)
        q = np.where(nonzero, gsum[group] / np.maximum(gcnt[group], 1), 0.0)
        p, q = _smooth(p), _smooth(q)
        if p is None or q is None:
            continue
        p, q = p / p.sum(), q / q.sum()
        kl = float(np.sum(p * np.log(p / q)))
        if kl < best_kl:
            best_kl, best_i = kl, i
    return float(best_i * width)


def _smooth(d: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    zeros = d == 0
    n_zero = int(zeros.sum())
    n_nonzero = d.size - n_zero
    if n_nonzero == 0:
        return None
    out = d + eps * zeros - (eps * n_zero / n_nonzero) * ~zeros
    return out if np.all(out > 0) else None
