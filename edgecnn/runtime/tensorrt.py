"""TensorRT backend of the runtime: runs model.<prec>.engine with the tensor-address API.

No torch, no pycuda: device memory, pinned host buffers and the stream come from cuda-python
(``cuda.bindings.runtime``, wrapped by :mod:`edgecnn.runtime.trt_cuda`). TensorRT calls follow the
Python API: Runtime.deserialize_cuda_engine (after ``Runtime.DLA_core`` for a DLA engine),
create_execution_context, set_input_shape, set_tensor_address, execute_async_v3. Before
deserialising, the engine metadata is compared with this machine (edgecnn.platform_info.probe)
and a mismatch is refused.

CUDA graphs (``cuda_graph=True``): the batch-1 run is captured on an execution context of its own,
fixed at batch 1. The shared context is reshaped for other batches; the graph's context never is,
so a replay never runs with a shape set after its capture (TensorRT asks for a re-capture after
any ``set_input_shape``). A capture that fails ends the capture and falls back to plain runs.
"""

from __future__ import annotations

import os

import numpy as np

from edgecnn.errors import BackendUnavailableError, EngineMismatchError, InputError
from edgecnn.runtime.session import Session
from edgecnn.runtime.trt_cuda import CudaRuntime, HostDeviceBuffer, native_handle
from edgecnn.runtime.trt_engine_info import (DETAILS_KEY, EngineMetadata, check_engine_compatible,
                                             import_cudart, import_tensorrt)


def _new_context(engine, artifact_file: str):
    context = engine.create_execution_context()
    if context is None:
        raise BackendUnavailableError(f"TensorRT could not create an execution context for "
                                      f"{artifact_file} (usually out of GPU memory); close other GPU "
                                      f"programs or rebuild with a smaller batch profile")
    return context


def _set_shape(context, name: str, shape: tuple[int, ...], limits: str) -> None:
    if not context.set_input_shape(name, tuple(int(d) for d in shape)):
        raise InputError(f"TensorRT refused input shape {tuple(shape)} for '{name}'; the engine's "
                         f"profile allows {limits}")


class TensorRTSession(Session):
    backend = "tensorrt"

    def __init__(self, manifest, artifact, path: str, threads: int | None = None,
                 cuda_graph: bool = False, check_platform: bool = True, bundle: str | None = None):
        super().__init__(manifest, artifact, path)
        self._closed = False
        self._cuda = None
        bundle = bundle or os.path.dirname(path)
        meta = EngineMetadata.from_dict(artifact.details.get(DETAILS_KEY))
        trt = import_tensorrt("running TensorRT engines")
        cuda = CudaRuntime(import_cudart("running TensorRT engines"))
        if check_platform:
            from edgecnn.platform_info import probe

            self.platform_warnings = check_engine_compatible(meta, probe(), artifact.file, bundle)
        cuda.device_count()  # one clear line when there is no GPU or the driver is too old
        self._trt, self.metadata = trt, meta
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        if meta.dla_core is not None:
            self._runtime.DLA_core = int(meta.dla_core)  # before deserialising a DLA engine
        with open(path, "rb") as f:
            self._engine = self._runtime.deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise EngineMismatchError(f"TensorRT {trt.__version__} could not deserialise {artifact.file} "
                                      f"(built with {meta.tensorrt} for {meta.target}); run "
                                      f"'edgecnn build {bundle} --precision {meta.precision}' here")
        engine = self._engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailableError(f"{artifact.file} has {len(inputs)} inputs and {len(outputs)} "
                                          f"outputs; edgecnn runs one-input one-output classifiers")
        self._in, self._out = inputs[0], outputs[0]
        mn, _opt, mx = engine.get_tensor_profile_shape(self._in, 0)
        self._min_batch, self._max_batch = int(mn[0]), int(mx[0])
        self._limits = f"batch {self._min_batch}..{self._max_batch}"
        self._context = _new_context(engine, artifact.file)
        self._graph_ctx = None  # the batch-1 graph's own context (cuda_graph=True)
        self._graph = self._graph_exec = None
        self._bufs: dict[str, HostDeviceBuffer] = {}
        self._stream = None
        self._cuda = cuda
        self._stream = cuda("cudaStreamCreate")
        _set_shape(self._context, self._in, tuple(mx), self._limits)
        out_max = tuple(self._context.get_tensor_shape(self._out))
        self._bufs[self._in] = HostDeviceBuffer(cuda, self._in, trt.nptype(engine.get_tensor_dtype(self._in)),
                                                tuple(mx))
        self._bufs[self._out] = HostDeviceBuffer(cuda, self._out,
                                                 trt.nptype(engine.get_tensor_dtype(self._out)), out_max)
        self._bind(self._context)
        self._use_graph = cuda_graph and self._min_batch <= 1
        self.graph_note: str | None = None  # why CUDA graphs were turned off, if they were
        self._shape: tuple[int, ...] | None = None

    def max_batch(self) -> int | None:
        return self._max_batch

    def _bind(self, context) -> None:
        for name, buf in self._bufs.items():
            if not context.set_tensor_address(name, int(buf.device)):
                raise BackendUnavailableError(f"TensorRT refused the device address of '{name}'")

    # -- execution -------------------------------------------------------------------------
    def _enqueue(self, context, n_in: int, n_out: int) -> None:
        """H2D copy, inference, D2H copy on the stream (what a CUDA graph captures)."""
        cuda, rt = self._cuda, self._cuda.rt
        bi, bo = self._bufs[self._in], self._bufs[self._out]
        cuda("cudaMemcpyAsync", bi.device, bi.host_ptr, n_in * bi.dtype.itemsize,
             rt.cudaMemcpyKind.cudaMemcpyHostToDevice, self._stream)
        if not context.execute_async_v3(native_handle(self._stream)):
            raise BackendUnavailableError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        cuda("cudaMemcpyAsync", bo.host_ptr, bo.device, n_out * bo.dtype.itemsize,
             rt.cudaMemcpyKind.cudaMemcpyDeviceToHost, self._stream)

    def _capture(self, shape: tuple[int, ...], n_in: int) -> bool:
        """Capture the batch-1 run on its own context; False (and plain runs from now) on failure."""
        cuda, rt = self._cuda, self._cuda.rt
        ctx = _new_context(self._engine, self.artifact.file)
        _set_shape(ctx, self._in, shape, self._limits)
        self._bind(ctx)
        out_shape = self._out_shape_for(ctx, shape)
        n_out = int(np.prod(out_shape))
        self._enqueue(ctx, n_in, n_out)  # TensorRT needs one plain run after a shape is set
        cuda("cudaStreamSynchronize", self._stream)
        graph = None
        try:
            cuda("cudaStreamBeginCapture", self._stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)
            try:
                self._enqueue(ctx, n_in, n_out)
            finally:  # always end the capture, or the stream stays in capture mode
                graph = cuda("cudaStreamEndCapture", self._stream)
            self._graph_exec = cuda("cudaGraphInstantiate", graph, 0)
        except BackendUnavailableError as exc:
            if graph is not None:
                rt.cudaGraphDestroy(graph)
            self._use_graph = False
            self.graph_note = f"CUDA graph capture failed, running without it: {exc}"
            return False
        self._graph, self._graph_ctx = graph, ctx
        self._graph_out_shape = out_shape
        return True

    def _run(self, batch: np.ndarray) -> np.ndarray:
        shape = tuple(int(d) for d in batch.shape)
        bi, bo = self._bufs[self._in], self._bufs[self._out]
        n_in = batch.size
        if not (self._use_graph and shape[0] == 1):
            out_shape = self._out_shape_for(self._context, shape)  # refuses a bad shape first
            bi.host[:n_in] = batch.astype(bi.dtype, copy=False).ravel()
            self._enqueue(self._context, n_in, int(np.prod(out_shape)))
        else:
            bi.host[:n_in] = batch.astype(bi.dtype, copy=False).ravel()
            if self._graph_exec is not None or self._capture(shape, n_in):
                # replays on the graph's own context, whatever the shared one was set to since
                out_shape = self._graph_out_shape
                self._cuda("cudaGraphLaunch", self._graph_exec, self._stream)
            else:
                out_shape = self._out_shape_for(self._context, shape)
                self._enqueue(self._context, n_in, int(np.prod(out_shape)))
        self._cuda("cudaStreamSynchronize", self._stream)
        n_out = int(np.prod(out_shape))
        return bo.host[:n_out].reshape(out_shape).astype(np.float32)

    _graph_out_shape: tuple[int, ...] = ()

    def _out_shape_for(self, context, shape: tuple[int, ...]) -> tuple[int, ...]:
        if context is self._context and shape != self._shape:
            _set_shape(context, self._in, shape, self._limits)
            self._shape = shape
        out_shape = tuple(int(d) for d in context.get_tensor_shape(self._out))
        if any(d < 0 for d in out_shape):
            raise InputError(f"TensorRT could not infer the output shape for input {shape}")
        return out_shape

    def close(self) -> None:
        """Graph, then the execution contexts and the engine, then buffers and stream."""
        cuda = self._cuda
        if cuda is None or self._closed:
            return
        self._closed = True
        if self._graph_exec is not None:
            cuda("cudaGraphExecDestroy", self._graph_exec)
            cuda("cudaGraphDestroy", self._graph)
            self._graph_exec = self._graph = None
        self._graph_ctx = self._context = None  # contexts go before the memory they point to
        self._engine = None
        for buf in self._bufs.values():
            buf.free(cuda)
        if self._stream is not None:
            cuda("cudaStreamDestroy", self._stream)
            self._stream = None

    def __del__(self):  # pragma: no cover - best effort when a caller forgets close()
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def raw(self):
        """(ICudaEngine, IExecutionContext)."""
        return self._engine, self._context
