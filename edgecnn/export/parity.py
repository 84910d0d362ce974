"""Do two models agree? Compare logits of a reference (PyTorch) and a candidate (an artifact).

``compare_outputs(reference, candidate) -> ParityReport`` is numpy-only, so every
backend (fp16/int8 ONNX, TFLite, TensorRT) reports parity the same way; the
tolerance scales with the magnitude of the reference logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgecnn.errors import ParityError, first_line


@dataclass(frozen=True)
class ParityTolerance:
    """Pass when max|diff| <= max_abs_rel * max(1, max|ref|), cosine >= min_cosine, top-1 >= min_top1."""

    max_abs_rel: float = 1e-4
    min_cosine: float = 0.9999
    min_top1: float = 0.0  # random inputs on random weights give near-ties; not gated for fp32


# Defaults per precision; backends may pass their own.
TOLERANCES: dict[str, ParityTolerance] = {
    "fp32": ParityTolerance(1e-4, 0.9999, 0.0),
    "fp16": ParityTolerance(2e-2, 0.999, 0.0),
    "int8": ParityTolerance(math.inf, 0.95, 0.0),
}


@dataclass
class ParityReport:
    max_abs_diff: float
    mean_abs_diff: float
    cosine: float  # the lowest per-sample cosine similarity
    top1_agreement: float  # fraction of samples with the same arg-max
    samples: int
    ref_max_abs: float  # max |reference|: the tolerance scales with it
    batch_sizes: list[int] = field(default_factory=list)
    tolerance: dict[str, float] | None = None

    def failures(self, tol: ParityTolerance | float | None = None) -> list[str]:
        tol = _as_tol(tol)
        limit = tol.max_abs_rel * max(1.0, self.ref_max_abs)
        out = []
        if not self.max_abs_diff <= limit:  # NaN fails too
            out.append(f"max abs diff {self.max_abs_diff:.3g} > {limit:.3g}")
        if not self.cosine >= tol.min_cosine:
            out.append(f"cosine {self.cosine:.6f} < {tol.min_cosine}")
        if not self.top1_agreement >= tol.min_top1:
            out.append(f"top-1 agreement {self.top1_agreement:.3f} < {tol.min_top1}")
        return out

    def passed(self, tol: ParityTolerance | float | None = None) -> bool:
        return not self.failures(tol)

    def check(self, tol: ParityTolerance | float | None, what: str) -> "ParityReport":
        """Record the tolerance; raise ParityError when outside it."""
        t = _as_tol(tol)
        self.tolerance = {k: (v if math.isfinite(v) else None) for k, v in asdict(t).items()}
        bad = self.failures(t)
        if bad:
            raise ParityError(f"{what} disagrees with PyTorch: {'; '.join(bad)} "
                              f"(over {self.samples} random inputs); the exported graph is not "
                              f"faithful, please report the model")
        return self

    def summary(self) -> str:
        return (f"max|d|={self.max_abs_diff:.2e} mean|d|={self.mean_abs_diff:.2e} "
                f"cos={self.cosine:.6f} top1={self.top1_agreement:.2%} (n={self.samples})")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None  # JSON has no NaN/inf
        return d


def _as_tol(tol) -> ParityTolerance:
    if tol is None:
        return TOLERANCES["fp32"]
    if isinstance(tol, (int, float)):
        return ParityTolerance(max_abs_rel=float(tol))
    if isinstance(tol, str):
        return TOLERANCES[tol]
    return tol


def compare_outputs(reference, candidate, batch_sizes: Sequence[int] = ()) -> ParityReport:
    """Reference and candidate logits (N, classes) -> ParityReport."""
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape:
        raise ParityError(f"output shapes differ: reference {ref.shape} vs candidate {cand.shape}")
    if ref.size == 0:
        raise ParityError("no outputs to compare")
    ref2 = ref.reshape(ref.shape[0], -1)
    cand2 = cand.reshape(cand.shape[0], -1)
    diff = np.abs(ref2 - cand2)
    num = (ref2 * cand2).sum(axis=1)
    den = np.linalg.norm(ref2, axis=1) * np.linalg.norm(cand2, axis=1)
    both_zero = (den == 0) & (np.abs(ref2).max(axis=1) == np.abs(cand2).max(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(both_zero, 1.0, 0.0))
    top1 = float(np.mean(ref2.argmax(axis=1) == cand2.argmax(axis=1)))
    return ParityReport(
        max_abs_diff=float(diff.max()), mean_abs_diff=float(diff.mean()),
        cosine=float(np.min(cos)) if np.all(np.isfinite(cand2)) else float("nan"),
        top1_agreement=top1, samples=int(ref.shape[0]), ref_max_abs=float(np.abs(ref2).max()),
        batch_sizes=list(batch_sizes))


def parity_batches(samples: int, fixed_batch: int | None = None) -> list[int]:
    """Batch sizes for a parity run: ``samples`` in one batch plus a batch of 1 (dynamic axis)."""
    samples = max(1, int(samples))
    if fixed_batch is not None:
        return [fixed_batch] * max(1, math.ceil(samples / fixed_batch))
    return [samples, 1] if samples != 1 else [1, 2]


def random_inputs(batch_sizes: Sequence[int], input_size_chw, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, *tuple(input_size_chw))).astype(np.float32) for b in batch_sizes]


def torch_outputs(module, batches: Sequence[np.ndarray]) -> np.ndarray:
    """Run the PyTorch module on each batch (no grad) and stack the logits."""
    import torch

    outs = []
    with torch.no_grad():
        for b in batches:
            outs.append(module(torch.from_numpy(b)).detach().float().numpy())
    return np.concatenate(outs)


def onnx_outputs(path, batches: Sequence[np.ndarray], threads: int | None = None) -> np.ndarray:
    """Run an ONNX file with onnxruntime (CPU, all graph optimisations) on each batch."""
    from edgecnn.runtime.ort import inference_session

    sess = inference_session(path, threads or 2)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: b})[0] for b in batches])


def check_onnx_parity(module, onnx_path, input_size_chw, samples: int = 8, seed: int = 0,
                      threads: int | None = None, fixed_batch: int | None = None,
                      tolerance: ParityTolerance | str | float | None = "fp32",
                      reference: np.ndarray | None = None) -> ParityReport:
    """PyTorch vs onnxruntime on seeded random inputs; raises ParityError outside ``tolerance``.
    ``reference``: PyTorch's outputs on those inputs when the caller has them already."""
    from edgecnn.errors import ExportError

    sizes = parity_batches(samples, fixed_batch)
    batches = random_inputs(sizes, input_size_chw, seed)
    if reference is None:
        reference = torch_outputs(module, batches)
    try:
        candidate = onnx_outputs(onnx_path, batches, threads)
    except Exception as exc:  # onnxruntime's own error types: one clear line instead
        raise ExportError(f"onnxruntime cannot run the exported {Path(onnx_path).name}: "
                          f"{first_line(exc)}") from exc
    report = compare_outputs(reference, candidate, batch_sizes=sizes)
    return report.check(tolerance, Path(onnx_path).name)
