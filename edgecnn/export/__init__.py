"""PyTorch -> ONNX export, parity checks and the export pipeline.

``from edgecnn.export import export`` is the Python API of ``edgecnn export``;
torch and onnx are imported only when a function runs.
"""

from __future__ import annotations


def export(model, options=None, log=print):
    """See :func:`edgecnn.pipeline.export`."""
    from edgecnn.pipeline import export as _export

    return _export(model, options, log)


__all__ = ["export"]
