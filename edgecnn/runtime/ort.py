"""ONNX Runtime backend of the runtime: runs model.onnx / model.fp16.onnx / model.int8.onnx."""

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
        ort = require("onnxruntime", "ort", "run ONNX bundles")
        so = ort.SessionOptions()
        # ORT_ENABLE_ALL includes the layout (NCHWc) transforms: measured here, that level is
        # where the CNN speed-up over PyTorch eager comes from.
        so.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[optimization]
        self.threads = threads or default_threads()
        so.intra_op_num_threads = self.threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self._sess = ort.InferenceSession(path, sess_options=so,
                                              providers=providers or ["CPUExecutionProvider"])
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

