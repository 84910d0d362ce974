"""ONNX Runtime backend of the runtime: runs model.onnx / model.fp16.onnx / model.int8.onnx.

:func:`inference_session` is the one place an ``onnxruntime.InferenceSession`` is made: the
runtime's sessions and the build-time checks (parity, calibration, the accuracy budget) get
the same threads and optimisation level.
"""

from __future__ import annotations

import os
import warnings

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
        self.saturation_note = saturation_note(artifact.details)
        if self.saturation_note:
            warnings.warn(self.saturation_note, RuntimeWarning, stacklevel=3)

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


def saturation_note(details: dict) -> str | None:
    """Why a CPU int8 graph may run less accurately on this CPU than where it was built, or None:
    8-bit weights chosen on a CPU that sums u8 x s8 in int32 (VNNI/AMX), run on an x86 CPU
    without VNNI, whose int16 pair sums they can saturate (the export tries 7-bit weights only
    on such a CPU)."""
    choice = details.get("weight_bits_choice")
    if details.get("weight_bits") != 8 or not isinstance(choice, dict) or choice.get("tried_7bit"):
        return None
    from edgecnn.platform_info import int16_saturation_risk

    if not int16_saturation_risk():
        return None
    built = " ".join(str(x) for x in (choice.get("cpu"), choice.get("flags")) if x)
    return (f"this int8 graph has 8-bit weights chosen on a CPU with VNNI ({built}); this x86 "
            f"CPU has no VNNI and sums int8 products in int16, which 8-bit weights can saturate: "
            f"check its accuracy here (edgecnn eval), or re-export on this CPU (or one like it) "
            f"to let edgecnn pick 7-bit weights where they run more faithfully")


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


RUN_BATCH_ELEMENTS = 1 << 21  # input elements per batch: ONNX Runtime's arena keeps the
# activations of the largest batch it ran, per session (64 images at 224x224 held ~0.8 GB each;
# 13 at this bound)


def run_batched(sess, data: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Logits of a raw InferenceSession for ``data``, batch by batch: at most ``batch_size``
    samples and :data:`RUN_BATCH_ELEMENTS` input elements a batch (the last batch padded for
    fixed-batch models)."""
    name = sess.get_inputs()[0].name
    fixed = fixed_batch(sess)
    per_sample = int(np.prod(data.shape[1:])) if data.ndim > 1 else 1
    bs = fixed or max(1, min(batch_size, RUN_BATCH_ELEMENTS // max(1, per_sample)))
    out = []
    for i in range(0, len(data), bs):
        x = data[i:i + bs]
        n = len(x)
        if fixed and n < fixed:
            x = np.concatenate([x, np.repeat(x[-1:], fixed - n, axis=0)])
        out.append(sess.run(None, {name: x})[0][:n])
    return np.concatenate(out)
