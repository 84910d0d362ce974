"""PyTorch -> ONNX export and parity checks (:mod:`edgecnn.export.onnx`, :mod:`.parity`).

``from edgecnn.export import ExportOptions, export`` is also the Python API of
``edgecnn export``: ``export`` hands over to the orchestrator, :func:`edgecnn.pipeline.export`.
That call is the one import in edgecnn that points up a layer (docs/architecture.md): the public
name predates the orchestrator's own module, and it is imported only when called, so importing
this package never loads the layers above it. torch and onnx are imported only when a function
runs.
"""

from __future__ import annotations

from edgecnn.options import ExportOptions


def export(model, options=None, log=print, setup=None):
    """See :func:`edgecnn.pipeline.export`."""
    from edgecnn.pipeline import export as _export

    return _export(model, options, log, setup=setup)


__all__ = ["ExportOptions", "export"]
