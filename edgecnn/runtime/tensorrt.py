"""TensorRT backend of the runtime: runs model.<prec>.engine with the tensor-address API.

No torch, no pycuda: device memory, pinned host buffers and the stream come from cuda-python
(``cuda.bindings.runtime``: cudaMalloc, cudaMallocHost, cudaMemcpyAsync, cudaStreamCreate,
cudaStreamBeginCapture/EndCapture, cudaGraphInstantiate/Launch). TensorRT calls follow the
Python API: Runtime.deserialize_cuda_engine, create_execution_context, set_input_shape,
set_tensor_address, execute_async_v3 (docs.nvidia.com/deeplearning/tensorrt/latest/_static/
python-api/infer/Core/ExecutionContext.html). Before deserialising, the engine metadata is
compared with this machine (edgecnn.platform_info.probe) and a mismatch is refused.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from edgecnn.errors import BackendUnavailableError, EngineMismatchError, InputError
from edgecnn.runtime.session import Session
from edgecnn.runtime.trt_engine_info import (DETAILS_KEY, EngineMetadata, check_engine_compatible,
                                             import_cudart, import_tensorrt)

_CTYPES = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float16): ctypes.c_uint16,
           np.dtype(np.int8): ctypes.c_int8, np.dtype(np.uint8): ctypes.c_uint8,
           np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64}


class _Cuda:
    """Thin checked wrapper over cuda-python's runtime calls (they return (err, *values))."""

    def __init__(self, cudart):
        self.rt = cudart

    def __call__(self, name: str, *args):
        result = getattr(self.rt, name)(*args)
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            _, text = self.rt.cudaGetErrorString(err)
            raise BackendUnavailableError(f"CUDA {name} failed: {text.decode() if isinstance(text, bytes) else text}")
        return values[0] if len(values) == 1 else values


class _Buffer:
    """One engine I/O tensor: device memory plus a pinned host mirror, sized for max batch."""

    def __init__(self, cuda: _Cuda, name: str, dtype: np.dtype, max_shape: tuple[int, ...]):
        self.name, self.dtype = name, np.dtype(dtype)
        self.count = int(np.prod(max_shape))
        self.nbytes = self.count * self.dtype.itemsize
        self.device = cuda("cudaMalloc", self.nbytes)
        self.host_ptr = cuda("cudaMallocHost", self.nbytes)
        ptr = ctypes.cast(int(self.host_ptr), ctypes.POINTER(_CTYPES[self.dtype]))
        self.host = np.ctypeslib.as_array(ptr, (self.count,)).view(self.dtype)

    def free(self, cuda: _Cuda) -> None:
        cuda("cudaFree", self.device)
        cuda("cudaFreeHost", self.host_ptr)


class TensorRTSession(Session):
    backend = "tensorrt"

    def __init__(self, manifest, artifact, path: str, threads: int | None = None,
                 cuda_graph: bool = False, check_platform: bool = True, bundle: str | None = None):
        super().__init__(manifest, artifact, path)
        bundle = bundle or os.path.dirname(path)
        meta = EngineMetadata.from_dict(artifact.details.get(DETAILS_KEY))
        trt = import_tensorrt("running TensorRT engines")
        cuda = _Cuda(import_cudart("running TensorRT engines"))
        if check_platform:
            from edgecnn.platform_info import probe

            self.platform_warnings = check_engine_compatible(meta, probe(), artifact.file, bundle)
        self._trt, self._cuda, self.metadata = trt, cuda, meta
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        with open(path, "rb") as f:
            self._engine = self._runtime.deserialize_cuda_engine(f.read())
        if self._engine is None:
            raise EngineMismatchError(f"TensorRT {trt.__version__} could not deserialise {artifact.file} "
                                      f"(built with {meta.tensorrt} for {meta.target}); run "
                                      f"'edgecnn build {bundle} --precision {meta.precision}' here")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendUnavailableError(f"{artifact.file} has {len(inputs)} inputs and {len(outputs)} "
                                          f"outputs; edgecnn runs one-input one-output classifiers")
        self._in, self._out = inputs[0], outputs[0]
        _mn, _opt, mx = self._engine.get_tensor_profile_shape(self._in, 0)
        self._max_batch = int(mx[0])
        self._stream = cuda("cudaStreamCreate")
        self._context.set_input_shape(self._in, tuple(mx))
        out_max = tuple(self._context.get_tensor_shape(self._out))
        self._bufs = {
            self._in: _Buffer(cuda, self._in, trt.nptype(self._engine.get_tensor_dtype(self._in)), tuple(mx)),
            self._out: _Buffer(cuda, self._out, trt.nptype(self._engine.get_tensor_dtype(self._out)), out_max),
        }
        for name, buf in self._bufs.items():
            self._context.set_tensor_address(name, int(buf.device))
        self._graph_exec = None
        self._graph = None
        self._use_graph = cuda_graph
        self._shape: tuple[int, ...] | None = None

    def max_batch(self) -> int | None:
        return self._max_batch

    # -- execution -------------------------------------------------------------------------
    def _enqueue(self, n_in: int, n_out: int) -> None:
        """H2D copy, inference, D2H copy on the stream (what a CUDA graph captures)."""
        cuda, kinds = self._cuda, self._cuda.rt.cudaMemcpyKind
        bi, bo = self._bufs[self._in], self._bufs[self._out]
        cuda("cudaMemcpyAsync", bi.device, bi.host_ptr, n_in * bi.dtype.itemsize,
             kinds.cudaMemcpyHostToDevice, self._stream)
        if not self._context.execute_async_v3(int(self._stream)):
            raise BackendUnavailableError("TensorRT execute_async_v3 failed; see the TensorRT log above")
        cuda("cudaMemcpyAsync", bo.host_ptr, bo.device, n_out * bo.dtype.itemsize,
             kinds.cudaMemcpyDeviceToHost, self._stream)

    def _capture(self, n_in: int, n_out: int) -> None:
        """Record one batch-1 run in a CUDA graph (TensorRT needs one normal run first)."""
        cuda, rt = self._cuda, self._cuda.rt
        self._enqueue(n_in, n_out)
        cuda("cudaStreamSynchronize", self._stream)
        cuda("cudaStreamBeginCapture", self._stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)
        self._enqueue(n_in, n_out)
        self._graph = cuda("cudaStreamEndCapture", self._stream)
        self._graph_exec = cuda("cudaGraphInstantiate", self._graph, 0)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        n = batch.shape[0]
        if tuple(batch.shape) != self._shape:
            self._context.set_input_shape(self._in, tuple(batch.shape))
            self._shape = tuple(batch.shape)
        out_shape = tuple(self._context.get_tensor_shape(self._out))
        if any(d < 0 for d in out_shape):
            raise InputError(f"TensorRT could not infer the output shape for input {batch.shape}")
        bi, bo = self._bufs[self._in], self._bufs[self._out]
        n_in, n_out = batch.size, int(np.prod(out_shape))
        bi.host[:n_in] = batch.astype(bi.dtype, copy=False).ravel()
        if self._use_graph and n == 1:
            if self._graph_exec is None:
                self._capture(n_in, n_out)
            self._cuda("cudaGraphLaunch", self._graph_exec, self._stream)
        else:
            self._enqueue(n_in, n_out)
        self._cuda("cudaStreamSynchronize", self._stream)
        return bo.host[:n_out].reshape(out_shape).astype(np.float32)

    def close(self) -> None:
        cuda = getattr(self, "_cuda", None)
        if cuda is None or getattr(self, "_closed", False):
            return
        self._closed = True
        if self._graph_exec is not None:
            cuda("cudaGraphExecDestroy", self._graph_exec)
            cuda("cudaGraphDestroy", self._graph)
        for buf in self._bufs.values():
            buf.free(cuda)
        cuda("cudaStreamDestroy", self._stream)
        self._context = self._engine = None

    @property
    def raw(self):
        """(ICudaEngine, IExecutionContext)."""
        return self._engine, self._context
