"""LiteRT backend of the runtime: runs model.{fp32,fp16,int8}.tflite.

The interpreter comes from whichever of these is installed, in this order:
``ai_edge_litert.interpreter`` (LiteRT, numpy 2), ``tflite_runtime.interpreter`` (the old
wheel, numpy<2 only), ``tensorflow.lite``. XNNPACK is the interpreter's default delegate for
float and int8 models, so nothing needs to be attached here. Never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading

import numpy as np

from edgecnn.errors import BackendUnavailableError, MissingDependencyError
from edgecnn.runtime.session import Session

# (module that provides Interpreter, how to get it) in order of preference
_PROVIDERS = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter", "tensorflow.lite")
TFLITE_IDENTIFIER = b"TFL3"  # flatbuffer file identifier at bytes 4..8 of every .tflite


def litert_provider() -> str | None:
    """The module that will provide the TFLite interpreter, or None (for ``edgecnn doctor``).

    Looks the modules up without importing them (tensorflow takes seconds to import).
    """
    for name in _PROVIDERS:
        try:
            if importlib.util.find_spec(name) is not None:
                return name
        except (ImportError, ValueError):  # parent package missing
            continue
    return None


def interpreter_class():
    name = litert_provider()
    if name is None:
        raise MissingDependencyError(
            "no TFLite interpreter is installed (looked for ai_edge_litert, tflite_runtime, "
            "tensorflow); install it with: pip install 'edgecnn[litert]'")
    return importlib.import_module(name).Interpreter


def check_tflite_file(path: str) -> None:
    """Fail with a clear message for a file that is not a (complete) TFLite flatbuffer."""
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise BackendUnavailableError(f"cannot read {name}: {exc.strerror}") from exc
    if size < 8 or head[4:8] != TFLITE_IDENTIFIER:
        raise BackendUnavailableError(
            f"{name} is not a TFLite model (no 'TFL3' flatbuffer identifier; {size} bytes): the "
            f"file is damaged or not a .tflite; copy the bundle again or re-export it")
    # the interpreter does not verify the flatbuffer and can crash on a damaged one
    import mmap

    from edgecnn.runtime.tflite_check import FlatbufferError, check_tflite_structure

    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        try:
            check_tflite_structure(data)
        except FlatbufferError as exc:
            raise BackendUnavailableError(
                f"{name} is not a valid TFLite model ({exc}): the file is damaged; copy the "
                f"bundle again or re-export it") from None


class LiteRTSession(Session):
    backend = "tflite"

    def __init__(self, manifest, artifact, path: str, threads: int | None = None,
                 batch_mode: str = "auto"):
        """``batch_mode``: 'resize' (resize_tensor_input to the batch), 'loop' (one image per
        invoke) or 'auto' (resize, falling back to loop where the graph has a fixed batch)."""
        super().__init__(manifest, artifact, path)
        if batch_mode not in ("auto", "resize", "loop"):
            raise ValueError(f"batch_mode must be auto, resize or loop, got {batch_mode!r}")
        check_tflite_file(path)
        Interpreter = interpreter_class()
        from edgecnn.runtime.ort import default_threads

        self.threads = threads or default_threads()
        self.provider = litert_provider()
        try:
            self._interp = Interpreter(model_path=path, num_threads=self.threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BackendUnavailableError(
                f"LiteRT cannot load {os.path.basename(path)}: {_first_line(exc)}; the file is "
                f"damaged or uses ops this runtime lacks; re-export the bundle or upgrade "
                f"ai-edge-litert") from exc
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise BackendUnavailableError(
                f"{os.path.basename(path)} has {len(ins)} inputs and {len(outs)} outputs; edgecnn "
                f"runs one-input one-output classifiers (damaged file?); re-export the bundle")
        self._in, self._out = ins[0], outs[0]
        self._model_batch = int(self._in["shape"][0])
        self._batch = self._model_batch
        self._dynamic = int(self._in["shape_signature"][0]) == -1
        self.batch_mode = "resize" if self._dynamic else batch_mode
        self._resize_ok: bool | None = {"auto": None, "resize": True, "loop": False}[self.batch_mode]
        # A TFLite Interpreter is not thread-safe (set_tensor/invoke/get_tensor share its
        # buffers): one Session used from several threads runs one batch at a time.
        self._lock = threading.Lock()

    # -- quantisation from the tensor's own parameters ------------------------------
    @staticmethod
    def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
        dtype = detail["dtype"]
        if dtype == np.float32:
            return x
        scale, zero = detail["quantization"]
        if scale == 0:
            return x.astype(dtype)
        info = np.iinfo(dtype)
        q = np.round(x / scale) + zero
        return np.clip(q, info.min, info.max).astype(dtype)

    @staticmethod
    def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
        if detail["dtype"] == np.float32:
            return y
        scale, zero = detail["quantization"]
        if scale == 0:
            return y.astype(np.float32)
        return (y.astype(np.float32) - zero) * np.float32(scale)

    # -- running --------------------------------------------------------------------
    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if n != self._batch:
            self._interp.resize_tensor_input(self._in["index"], [n, *batch.shape[1:]])
            self._interp.allocate_tensors()
            self._batch = n
        self._interp.set_tensor(self._in["index"], self._quantize(batch, self._in))
        self._interp.invoke()
        return self._dequantize(self._interp.get_tensor(self._out["index"]), self._out).copy()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            try:
                return self._run_locked(batch)
            except (ValueError, RuntimeError) as exc:
                # the input was checked against the manifest: the graph itself cannot run it
                raise BackendUnavailableError(
                    f"LiteRT failed to run {os.path.basename(self.path)} on input "
                    f"{tuple(batch.shape)}: {_first_line(exc)}; the model file is damaged or "
                    f"does not match its manifest; re-export the bundle") from exc

    def _run_locked(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if n == self._model_batch or self.batch_mode == "resize" or self._resize_ok:
            return self._invoke(batch)
        if self.batch_mode == "loop" or self._resize_ok is False:
            return self._loop(batch)
        # auto, first batch of another size: a graph traced at batch 1 may hold reshapes that
        # do not follow a resized input; keep resizing only when the result has the right shape.
        try:
            out = self._invoke(batch)
            self._resize_ok = out.shape[0] == n
        except (ValueError, RuntimeError):
            self._resize_ok = False
            self._batch = -1  # force a resize back to the model's batch
        if not self._resize_ok:
            return self._loop(batch)
        return out

    def _loop(self, batch: np.ndarray) -> np.ndarray:
        m = self._model_batch
        chunks = [batch[i:i + m] for i in range(0, batch.shape[0], m)]
        return np.concatenate([self._invoke(c) for c in chunks])

    @property
    def raw(self):
        """The underlying TFLite Interpreter."""
        return self._interp

    def close(self) -> None:
        self._interp = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
