"""The embeddable runtime: ``load(bundle) -> Session``.

Imports only the standard library, numpy and the one backend module a bundle needs;
never torch, tensorflow or onnx. Device apps embed this package.

    >>> import edgecnn.runtime as rt                      # doctest: +SKIP
    >>> with rt.load("bundles/lenet5") as s:
    ...     s.predict(["shirt.png"], top_k=3)
"""

from __future__ import annotations

import importlib
import os

from edgecnn import catalog
from edgecnn.bundle import Bundle
from edgecnn.errors import BundleError
from edgecnn.runtime.session import Prediction, Session


def session_class(backend: str) -> type[Session]:
    """The Session class the catalogue names for ``backend`` (its module imported now)."""
    entry = catalog.BACKENDS.get(backend)
    if entry is None:
        raise BundleError(f"no runtime backend for {backend!r}; this edgecnn knows "
                          f"{sorted(catalog.BACKENDS)}")
    target = entry.session
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def load(path: str | os.PathLike, *, backend: str | None = None, precision: str | None = None,
         threads: int | None = None, verify: bool = True, variant: str | None = None,
         **options) -> Session:
    """Open a bundle and return a Session for one of its artifacts.

    ``backend`` ('onnxruntime', 'tflite', 'tensorrt') and ``precision`` ('fp32', 'fp16',
    'int8') pick the artifact; by default the first fp32 artifact, else the first one.
    ``variant`` (or a suffix: ``precision="int8-trt"``) picks between two graphs of one
    precision: ONNX Runtime int8 has the CPU graph ('cpu', picked when the bundle has it) and
    the TensorRT-shaped one ('tensorrt' / 'trt'; older bundles have only this one).
    ``verify`` checks the artifact's sha256 before the backend sees the file.
    """
    bundle = Bundle.open(path)
    if backend is not None:
        backend = catalog.canonical(backend) if catalog.is_backend_name(backend) else backend
    artifact = bundle.manifest.find(backend, precision, variant)
    file = bundle.artifact_path(artifact, verify=verify)
    cls = session_class(artifact.backend)
    return cls(bundle.manifest, artifact, str(file), threads=threads, **options)


__all__ = ["load", "Session", "Prediction", "session_class"]
