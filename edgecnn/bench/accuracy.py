"""What ``edgecnn eval`` and bench's workers run: a bundle or a PyTorch model as one predictor.

Scoring itself is :func:`edgecnn.data.accuracy.evaluate` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgecnn.data.accuracy import AccuracyResult, evaluate
from edgecnn.errors import DataError


# -- what to evaluate ----------------------------------------------------------------------
@dataclass
class Predictor:
    """A model ready for :func:`evaluate`: its predict_fn plus the input spec it was built for."""

    predict_fn: Callable[[np.ndarray], np.ndarray]
    preprocess: object  # edgecnn.manifest.Preprocess
    labels: list[str]
    name: str  # model name
    target: str  # 'pytorch:fp32' or the artifact key, e.g. 'onnxruntime:int8'
    session: object = None  # the runtime Session for bundles (has .predict)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def load_predictor(model, weights=None, backend: str | None = None, precision: str | None = None,
                   threads: int | None = None) -> Predictor:
    """A bundle folder (via edgecnn.runtime) or a PyTorch model (checkpoint .pt, or a zoo name
    with ``weights``; needs torch) as a :class:`Predictor`."""
    import os

    from edgecnn.manifest import MANIFEST_NAME

    if os.path.isdir(model) and os.path.isfile(os.path.join(model, MANIFEST_NAME)):
        if weights is not None:
            raise DataError("a bundle already holds its weights; drop --weights")
        import edgecnn.runtime as rt

        session = rt.load(model, backend=backend, precision=precision, threads=threads)
        return Predictor(session.run, session.manifest.preprocess, list(session.manifest.labels),
                         session.manifest.model, session.artifact.key, session)
    if backend not in (None, "pytorch", "torch") or precision not in (None, "fp32"):
        raise DataError(f"{model} is a PyTorch model, which runs in fp32 on PyTorch only; export "
                        f"it ('edgecnn export') to evaluate other backends or precisions")
    from edgecnn.models.loading import load_model
    from edgecnn.models.checkpoint import torch_predict_fn

    loaded = load_model(model, weights=weights)
    return Predictor(torch_predict_fn(loaded.module, threads), loaded.preprocess,
                     list(loaded.labels), loaded.name, "pytorch:fp32")


__all__ = ["AccuracyResult", "Predictor", "evaluate", "load_predictor"]
