"""Accuracy budget: keep the most sensitive layers in float until INT8 is within
``max_accuracy_drop`` points of fp32 top-1 on held-out data.

Sensitivity of a layer = the error of the logits (normalised MSE vs fp32) when ONLY that
layer is quantized, scored on a few images (128 at 28-32 px). The k most sensitive layers
are then left in float (``nodes_to_exclude``, same cached ranges), and the fewest k that
meets the budget is found by doubling k and then bisecting: about 2*log2(k) re-quantizations,
each scored on the whole held-out set but stopped as soon as the verdict is certain (when
even all remaining images right could not bring the drop under the budget). A budget that
cannot be met within ``max_float_layers`` raises CalibrationError with the drop reached.
Without labels the score is top-1 agreement with fp32 (so the drop is disagreement).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgecnn.errors import CalibrationError, DataError
from edgecnn.quantize.int8 import (TENSORRT_QDQ, QdqScheme, float_island, quantizable_nodes,
                                   quantize_onnx)
from edgecnn.quantize.ranges import ActivationRanges
from edgecnn.runtime.ort import inference_session as ort_session
from edgecnn.runtime.ort import run_batched as run_model

SENSITIVITY_SAMPLES = 128
SENSITIVITY_ELEMENTS = 1 << 19  # input elements scored per layer: fewer images at 224 px
EVAL_CHUNK = 256
MAX_FLOAT_FRACTION = 0.5  # an "INT8" model with most layers in float is not an INT8 model


@dataclass
class EvalSet:
    data: np.ndarray  # float32 NCHW
    labels: np.ndarray | None
    spec: str

    @property
    def labelled(self) -> bool:
        return self.labels is not None


def load_eval(spec: str, preprocess, input_size_chw, limit: int | None = None,
              seed: int = 0) -> EvalSet:
    """Held-out data for the budget: any dataset spec (labels used when present)."""
    from edgecnn.data.datasets import load_dataset

    if not spec:
        raise CalibrationError("--max-accuracy-drop needs --eval with held-out data "
                               "(e.g. fashion-mnist:val, an image folder or a .npz)")
    try:
        ds = load_dataset(spec)
        if len(ds) == 0:
            raise CalibrationError(f"evaluation data {spec} is empty")
        ds = ds.subset(limit, seed) if limit else ds
        xs, ys = zip(*ds.batches(preprocess, 256))
    except DataError as exc:
        raise CalibrationError(f"evaluation data {spec}: {exc}") from None
    data = np.concatenate(xs)
    if tuple(data.shape[1:]) != tuple(input_size_chw):
        raise CalibrationError(f"evaluation data {spec} gives inputs {data.shape[1:]}, the model "
                               f"takes {tuple(input_size_chw)}")
    labels = None if ys[0] is None else np.concatenate(ys)
    return EvalSet(data=data, labels=labels, spec=spec)


def score(logits: np.ndarray, ev: EvalSet, ref_logits: np.ndarray) -> float:
    """Top-1 accuracy in percent (agreement with ``ref_logits`` when unlabelled)."""
    pred = logits.argmax(axis=1)
    target = ev.labels if ev.labelled else ref_logits.argmax(axis=1)
    return float(100.0 * np.mean(pred == target))


@dataclass
class BudgetResult:
    budget: float
    metric: str  # "top1" (labelled) or "agreement"
    fp32: float
    int8_plain: float
    int8: float
    drop_plain: float
    drop: float
    excluded: list[str] = field(default_factory=list)
    sensitivity: dict[str, float] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)
    eval_spec: str = ""
    eval_samples: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def sensitivity_samples(input_size_chw) -> int:
    """Images scored per layer: 128 at 28-32 px, fewer for big inputs (at least 16)."""
    c, h, w = input_size_chw
    return max(16, min(SENSITIVITY_SAMPLES, SENSITIVITY_ELEMENTS // max(1, c * h * w)))


def layer_sensitivity(fp32_path: Path, ranges: ActivationRanges, nodes: list[str],
                      data: np.ndarray, ref: np.ndarray, tmp: Path,
                      progress: Callable[[], None] = lambda: None,
                      scheme: QdqScheme = TENSORRT_QDQ) -> dict[str, float]:
    """Normalised logits MSE vs fp32 with only one layer quantized, per layer."""
    denom = float(np.mean(ref.astype(np.float64) ** 2)) or 1.0
    out: dict[str, float] = {}
    for i, node in enumerate(nodes):
        path = tmp / f"one_{i}.onnx"
        quantize_onnx(fp32_path, path, ranges, nodes_to_quantize=[node], scheme=scheme)
        logits = run_model(ort_session(path), data)
        out[node] = float(np.mean((logits.astype(np.float64) - ref) ** 2) / denom)
        path.unlink()
        progress()
    return out


@dataclass
class Probe:
    """One candidate: the ``excluded`` most sensitive layers in float."""
    excluded: int
    score: float  # exact, or an upper bound when ``complete`` is False
    drop: float  # exact, or a lower bound when ``complete`` is False
    images: int  # images scored before the verdict was certain
    complete: bool

    def meets(self, budget: float) -> bool:
        return self.complete and self.drop <= budget


def score_until(sess, ev: EvalSet, ref: np.ndarray, fp32: float, budget: float | None,
                chunk: int = EVAL_CHUNK) -> Probe:
    """Score ``sess`` on ``ev`` chunk by chunk; with a ``budget``, stop as soon as even all the
    remaining images right could not bring the drop under it (the verdict is then certain)."""
    n = len(ev.data)
    target = ev.labels if ev.labelled else ref.argmax(axis=1)
    right = 0
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        pred = run_model(sess, ev.data[start:stop]).argmax(axis=1)
        right += int(np.sum(pred == target[start:stop]))
        best_possible = 100.0 * (right + n - stop) / n
        if budget is not None and stop < n and fp32 - best_possible > budget:
            return Probe(0, best_possible, fp32 - best_possible, stop, complete=False)
    acc = 100.0 * right / n
    return Probe(0, acc, fp32 - acc, n, complete=True)


def float_layer_limit(layers: int, max_float_layers: int | None = None) -> int:
    """How many of ``layers`` a budget search may leave in float: ``max_float_layers`` when
    given, else half of them (at least one), never more than there are."""
    limit = max_float_layers if max_float_layers is not None else \
        max(1, int(layers * MAX_FLOAT_FRACTION))
    return min(limit, layers)


def fewest_passing(limit: int, passes: Callable[[int], bool]) -> int | None:
    """Smallest k in 1..limit with ``passes(k)``, taking ``passes`` as monotone (more layers
    in float never hurts much): double k until it passes, then bisect. About 2*log2(k) calls;
    None when even ``passes(limit)`` is False."""
    failing, k = 0, 1
    while not passes(k):
        if k >= limit:
            return None
        failing, k = k, min(2 * k, limit)
    passing = k
    while passing - failing > 1:
        mid = (failing + passing) // 2
        if passes(mid):
            passing = mid
        else:
            failing = mid
    return passing


def enforce_budget(fp32_path: str | os.PathLike, int8_path: str | os.PathLike,
                   ranges: ActivationRanges, ev: EvalSet, budget: float,
                   max_float_layers: int | None = None, log: Callable[[str], None] = print,
                   progress: bool = True, scheme: QdqScheme = TENSORRT_QDQ) -> BudgetResult:
    """Make ``int8_path`` (a ``scheme`` graph) meet ``budget`` (points of top-1); see the
    module doc. The same search serves the TensorRT graph and the CPU graph: a layer left in
    float is a Conv/Gemm/MatMul node excluded from ``scheme``'s quantization."""
    from edgecnn.progress import progress_bar

    if budget is None or not math.isfinite(budget) or budget < 0:
        raise CalibrationError(f"max_accuracy_drop must be a number of points >= 0, got {budget}")
    fp32_path, int8_path = Path(fp32_path), Path(int8_path)
    ref = run_model(ort_session(fp32_path), ev.data)
    fp32 = score(ref, ev, ref)
    plain = score(run_model(ort_session(int8_path), ev.data), ev, ref)
    metric = "top1" if ev.labelled else "agreement"
    res = BudgetResult(budget=budget, metric=metric, fp32=fp32, int8_plain=plain, int8=plain,
                       drop_plain=round(fp32 - plain, 4), drop=round(fp32 - plain, 4),
                       eval_spec=ev.spec, eval_samples=len(ev.data))
    log(f"INT8 {metric} {plain:.2f}% vs fp32 {fp32:.2f}% on {ev.spec} (drop {fp32 - plain:.2f} pt, "
        f"budget {budget:g} pt)")
    if fp32 - plain <= budget:
        return res
    nodes = quantizable_nodes(fp32_path)
    limit = float_layer_limit(len(nodes), max_float_layers)
    small = ev.data[:sensitivity_samples(ev.data.shape[1:])]
    log(f"over budget: measuring the sensitivity of {len(nodes)} layers on {len(small)} images")
    with tempfile.TemporaryDirectory(prefix="edgecnn-budget-") as tmpd:
        tmp = Path(tmpd)
        with progress_bar(progress, "layer sensitivity", len(nodes)) as advance:
            sens = layer_sensitivity(fp32_path, ranges, nodes, small, ref[:len(small)], tmp, advance,
                                     scheme=scheme)
        res.sensitivity = dict(sorted(sens.items(), key=lambda kv: -kv[1]))
        order = list(res.sensitivity)

        def probe(k: int, early_exit: bool = True) -> Probe:
            cand = tmp / f"excl_{k}.onnx"
            quantize_onnx(fp32_path, cand, ranges, scheme=scheme,
                          nodes_to_exclude=float_island(fp32_path, order[:k], scheme))
            p = score_until(ort_session(cand), ev, ref, fp32, budget if early_exit else None)
            p.excluded = k
            res.steps.append({"excluded": k, "layer": order[k - 1], metric: round(p.score, 4),
                              "drop": round(p.drop, 4), "images": p.images,
                              "complete": p.complete})
            bound = "" if p.complete else f"at least {p.drop:.2f} pt, certain after {p.images} of " \
                                          f"{len(ev.data)} images"
            log(f"  {k} most sensitive layer{'s' if k > 1 else ''} in float: " +
                (f"INT8 {metric} {p.score:.2f}% (drop {p.drop:.2f} pt)" if p.complete
                 else f"drop {bound}"))
            return p

        probes: dict[int, Probe] = {}

        def passes(k: int) -> bool:
            probes[k] = probe(k, early_exit=k < limit)  # the last resort is scored in full
            return probes[k].meets(budget)

        k = fewest_passing(limit, passes)
        if k is None:
            p = probes[limit]
            raise CalibrationError(
                f"accuracy budget {budget:g} pt cannot be met: the best INT8 model drops "
                f"{p.drop:.2f} pt of {metric} (plain PTQ {fp32 - plain:.2f} pt) with {limit} of "
                f"{len(nodes)} layers left in float (the limit is {limit}); try "
                f"--calib-method entropy or percentile, more calibration samples, or a "
                f"larger budget")
        passing = probes[k]
        os.replace(tmp / f"excl_{passing.excluded}.onnx", _unlinked(int8_path))
        res.int8, res.drop = passing.score, round(passing.drop, 4)
        res.excluded = order[:passing.excluded]
        return res


def _unlinked(p: Path) -> Path:
    if p.exists():
        p.unlink()
    return p
