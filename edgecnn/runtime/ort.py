"""ONNX Runtime backend of the runtime: runs model.onnx / model.fp16.onnx / model.int8.onnx.

:func:`inference_session` is the one place an ``onnxruntime.InferenceSession`` is made: the
runtime's sessions and the build-time checks (parity, calibration, the accuracy budget) get
the same threads and optimisation level.
"""

from __future__ import annotations

import os

import numpy as np

from edgecnn._lazy import require
from edgecnn.errors import BackendUnavailableError, first_line
from edgecnn.runtime.session import Session


class OrtSession(Session):
    backend = "onnxruntime"

    def __init__(self, manifest, artifact, path: str, threads: int | None = None,
                 providers: list[str] | None = None, optimization: str = "all"):
        super().__init__(manifest, artifact, path)
        self.threads = threads or default_threads()
        try:
            self._sess = inference_session(path, self.threads, optimization, providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendUnavailableError(
                f"ONNX Runtime cannot load {os.path.basename(path)}: {first_line(exc)}") from exc
        self._input_name = self._sess.get_inputs()[0].name
        self._output_name = self._sess.get_outputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self._sess.run([self._output_name], {self._input_name: batch})[0]
        except Exception as exc:  # onnxruntime's Fail/InvalidArgument/RuntimeException types
            # the input was checked against the manifest: a graph that loads but cannot run
            # it is damaged or does not match its manifest
            raise BackendUnavailableError(
                f"ONNX Runtime failed to run {os.path.basename(self.path)} on input "
                f"{tuple(batch.shape)}: {first_line(exc)}; the model file is damaged or does "
                f"not match its manifest; re-export the bundle") from exc

    @property
    def raw(self):
        """The underlying onnxruntime.InferenceSession."""
        return self._sess


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else (os.cpu_count() or 1))


_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
           "none": "ORT_DISABLE_ALL"}


def inference_session(path: str | os.PathLike, threads: int | None = None,
                      optimization: str = "all", providers: list[str] | None = None):
    """An onnxruntime.InferenceSession on ``threads`` intra-op threads (default: the cores this
    process may use) and one inter-op thread. Raises onnxruntime's own errors."""
    ort = require("onnxruntime", "ort", "run ONNX models")
    so = ort.SessionOptions()
    # ORT_ENABLE_ALL includes the layout (NCHWc) transforms: measured here, that level is
    # where the CNN speed-up over PyTorch eager comes from.
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[optimization])
    so.intra_op_num_threads = threads or default_threads()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(os.fspath(path), sess_options=so,
                                providers=providers or ["CPUExecutionProvider"])


def fixed_batch(sess) -> int | None:
    """The model's batch size when the export fixed it (e.g. from a .pt2), else None."""
    dim = sess.get_inputs()[0].shape[0]
    return dim if isinstance(dim, int) and dim > 0 else None


def run_batched(sess, data: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits of a raw InferenceSession for ``data``, batch by batch (the last batch padded for
    fixed-batch models)."""
    name = sess.get_inputs()[0].name
    fixed = fixed_batch(sess)
    bs = fixed or batch_size
    out = []
    for i in range(0, len(data), bs):
        x = data[i:i + bs]
        n = len(x)
        if fixed and n < fixed:
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, axis=0)])
        out.append(sess.run(None, {name: x})[0][:n])
    return np.concatenate(out)
