"""Accuracy of any predictor on a labelled dataset. Torch-free: numpy (+ rich for progress).

The data room owns it because training, export checks (the TFLite budget) and bench all score
predictions the same way, and all of them sit above ``data/``.

``evaluate`` takes a ``predict_fn(batch float32 NCHW) -> logits (N, K)``: a PyTorch model,
an ONNX Runtime / LiteRT / TensorRT session's ``run`` all fit, so every target is measured by
the same code on the same preprocessed input. Accuracies are in percent (points).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from edgecnn.errors import DataError
from edgecnn.progress import progress_bar


@dataclass
class AccuracyResult:
    top1: float  # percent
    top5: float  # percent (top-k with k = min(5, classes))
    per_class: list[float]  # percent per true class; nan where the class has no images
    confusion: np.ndarray  # int64 (K, K): rows = true class, columns = predicted class
    n: int
    classes: list[str] = field(default_factory=list)
    predictions: np.ndarray | None = None  # top-1 index per image, in dataset order
    spec: str = ""

    def agreement(self, other: "AccuracyResult") -> float:
        """Percent of images where both predictors chose the same class (e.g. int8 vs fp32)."""
        if self.predictions is None or other.predictions is None or self.n != other.n:
            raise DataError("agreement needs two results over the same images")
        return float(100.0 * np.mean(self.predictions == other.predictions))

    def to_dict(self) -> dict:
        return {"top1": round(self.top1, 4), "top5": round(self.top5, 4), "n": self.n,
                "spec": self.spec,
                "per_class": {c: (None if np.isnan(a) else round(a, 4))
                              for c, a in zip(self.classes, self.per_class)},
                "confusion": self.confusion.tolist()}


def evaluate(predict_fn: Callable[[np.ndarray], np.ndarray], dataset, preprocess,
             batch_size: int = 256, progress: bool = True, description: str | None = None
             ) -> AccuracyResult:
    """Run ``predict_fn`` over ``dataset`` (an ImageDataset with labels) batch by batch."""
    if dataset.labels is None:
        raise DataError(f"{dataset.spec or 'dataset'} has no labels; accuracy needs labelled "
                        f"data (an image folder with class subfolders, a .npz with 'labels', "
                        f"or fashion-mnist:test)")
    if len(dataset) == 0:
        raise DataError(f"{dataset.spec or 'dataset'} is empty")
    k = dataset.num_classes
    preds, top5_hits = [], 0
    confusion = np.zeros((k, k), dtype=np.int64)
    with progress_bar(progress, description or f"evaluating {dataset.spec}",
                      len(dataset)) as advance:
        for x, y in dataset.batches(preprocess, batch_size):
            logits = np.asarray(predict_fn(x))
            if logits.ndim != 2 or logits.shape[0] != len(x):
                raise DataError(f"predictor returned shape {logits.shape} for a batch of {len(x)}; "
                                f"expected (N, classes) logits")
            if logits.shape[1] != k:
                raise DataError(f"the model has {logits.shape[1]} outputs but {dataset.spec} has "
                                f"{k} classes; evaluate on data with the model's classes")
            top = np.argsort(-logits, axis=1, kind="stable")[:, :min(5, k)]
            preds.append(top[:, 0])
            top5_hits += int((top == y[:, None]).any(axis=1).sum())
            np.add.at(confusion, (y, top[:, 0]), 1)
            advance(len(x))
    pred = np.concatenate(preds)
    n = len(pred)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(totals > 0, 100.0 * np.diag(confusion) / totals, np.nan)
    return AccuracyResult(top1=float(100.0 * np.trace(confusion) / n),
                          top5=float(100.0 * top5_hits / n), per_class=per_class.tolist(),
                          confusion=confusion, n=n, classes=list(dataset.classes),
                          predictions=pred, spec=dataset.spec)
