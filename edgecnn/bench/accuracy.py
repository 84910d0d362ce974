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
    fixed_batch: int | None = None  # the artifact takes only this batch size (None: any)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def check_bundle_args(weights=None, setup=None) -> None:
    """A bundle holds its weights, preprocessing, labels and model: stating them is an error."""
    if weights is not None:
        raise DataError("a bundle already holds its weights; drop --weights")
    if setup is not None and not setup.is_empty:
        raise DataError("a bundle holds its own preprocessing, labels and model; drop "
                        "--preset/--resize/--crop/--mean/--std/--scale/--bgr/--labels/"
                        "--model-arg (export again to change them)")


def load_predictor(model, weights=None, backend: str | None = None, precision: str | None = None,
                   threads: int | None = None, *, input_size=None, num_classes: int | None = None,
                   seed: int | None = None, verify: bool = True, setup=None) -> Predictor:
    """A bundle folder (via edgecnn.runtime) or a PyTorch model (checkpoint .pt, or a zoo name
    with ``weights``; needs torch) as a :class:`Predictor`.

    ``verify`` checks the bundle artifact's sha256 before loading it (bench workers skip it:
    the parent verified once). For a PyTorch model, ``input_size`` and ``num_classes`` go to
    ``load_model``, and ``seed`` seeds torch before the model is built (a random-init zoo model
    is then the same network as the one exported with that seed). ``setup`` (a ModelSetup:
    preprocessing, labels, factory arguments) applies to PyTorch models only: a bundle holds
    its own."""
    import os

    from edgecnn.manifest import MANIFEST_NAME

    if os.path.isdir(model) and os.path.isfile(os.path.join(model, MANIFEST_NAME)):
        check_bundle_args(weights, setup)
        import edgecnn.runtime as rt

        session = rt.load(model, backend=backend, precision=precision, threads=threads,
                          verify=verify)
        fixed = session.input_shape[0]
        return Predictor(session.run, session.manifest.preprocess, list(session.manifest.labels),
                         session.manifest.model, session.artifact.key, session,
                         fixed_batch=fixed if fixed != -1 else None)
    if backend not in (None, "pytorch", "torch") or precision not in (None, "fp32"):
        raise DataError(f"{model} is a PyTorch model, which runs in fp32 on PyTorch only; export "
                        f"it ('edgecnn export') to evaluate other backends or precisions")
    from edgecnn.models.checkpoint import torch_predict_fn
    from edgecnn.models.loading import load_model

    if seed is not None:  # threads first, as for the exported model, then the same init
        import torch

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
    loaded = load_model(model, weights=weights, input_size=input_size, num_classes=num_classes,
                        setup=setup)
    return Predictor(torch_predict_fn(loaded.module, threads), loaded.preprocess,
                     list(loaded.labels), loaded.name, "pytorch:fp32")


__all__ = ["AccuracyResult", "Predictor", "evaluate", "load_predictor"]
