"""The CUDA runtime calls the TensorRT session makes, through cuda-python (``cuda.bindings.runtime``).

cuda-python returns ``(cudaError_t, *values)`` tuples instead of raising; :class:`CudaRuntime`
turns every non-success into one :class:`BackendUnavailableError` line that names the call, the
CUDA error and what to do, so no raw tuple and no half-made object escapes. Handles (streams,
graphs) are passed to TensorRT as integers through ``cuda.bindings.utils.get_cuda_native_handle``
(cuda-bindings 12.9.1+ / 13.x, where ``int(handle)`` is deprecated), else ``int()`` on older
releases. Stdlib + numpy only; cuda-python is imported by the caller (:func:`import_cudart`).
"""

from __future__ import annotations

import ctypes

import numpy as np

from edgecnn.errors import BackendUnavailableError

# numpy dtype -> ctypes element used to view pinned host memory as a numpy array
CTYPES = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float16): ctypes.c_uint16,
          np.dtype(np.int8): ctypes.c_int8, np.dtype(np.uint8): ctypes.c_uint8,
          np.dtype(np.int32): ctypes.c_int32, np.dtype(np.int64): ctypes.c_int64,
          np.dtype(np.bool_): ctypes.c_bool}

# errors that mean "no usable GPU / driver here" rather than a bug in the call
_NO_DEVICE_HINT = ("run on a machine with an NVIDIA GPU and a driver new enough for this "
                   "cuda-python (pip install 'cuda-python<13' for a CUDA 12 driver; 'edgecnn doctor' "
                   "shows the driver's CUDA version)")


def native_handle(obj) -> int:
    """The address a CUDA handle object wraps, as TensorRT's ``execute_async_v3`` wants it."""
    if isinstance(obj, int):
        return obj
    try:
        from cuda.bindings.utils import get_cuda_native_handle  # 12.9.1+ / 13.x
    except ImportError:
        return int(obj)
    return int(get_cuda_native_handle(obj))


class CudaRuntime:
    """Checked calls into ``cuda.bindings.runtime``: ``cuda("cudaMalloc", n) -> pointer``."""

    def __init__(self, cudart):
        self.rt = cudart

    def error_text(self, err) -> str:
        try:
            res = self.rt.cudaGetErrorString(err)
            text = res[1] if isinstance(res, tuple) else res
            text = text.decode() if isinstance(text, bytes) else str(text)
        except Exception:  # noqa: BLE001 - the message must never hide the original error
            text = "unknown error"
        name = getattr(err, "name", None) or f"error {int(err)}"
        return f"{name}: {text}"

    def __call__(self, name: str, *args):
        result = getattr(self.rt, name)(*args)
        err, values = (result[0], result[1:]) if isinstance(result, tuple) else (result, ())
        if int(err) != 0:
            raise BackendUnavailableError(f"CUDA {name} failed ({self.error_text(err)}); "
                                          f"{_NO_DEVICE_HINT}")
        return values[0] if len(values) == 1 else (values or None)

    def device_count(self) -> int:
        """The number of CUDA devices; raises the one-line error when there is none or no driver."""
        n = int(self("cudaGetDeviceCount"))
        if n < 1:
            raise BackendUnavailableError(f"CUDA sees no GPU; {_NO_DEVICE_HINT}")
        return n


class HostDeviceBuffer:
    """One engine I/O tensor: device memory plus a pinned host mirror, sized for max batch."""

    def __init__(self, cuda: CudaRuntime, name: str, dtype, max_shape: tuple[int, ...]):
        self.name, self.dtype = name, np.dtype(dtype)
        if self.dtype not in CTYPES:
            raise BackendUnavailableError(f"engine tensor '{name}' has dtype {self.dtype}, which "
                                          f"edgecnn cannot stage; rebuild with float32/float16 I/O")
        self.count = int(np.prod(max_shape))
        self.nbytes = self.count * self.dtype.itemsize
        self.device = self.host_ptr = None
        self.device = cuda("cudaMalloc", self.nbytes)
        self.host_ptr = cuda("cudaMallocHost", self.nbytes)
        ptr = ctypes.cast(int(self.host_ptr), ctypes.POINTER(CTYPES[self.dtype]))
        self.host = np.ctypeslib.as_array(ptr, (self.count,)).view(self.dtype)

    def free(self, cuda: CudaRuntime) -> None:
        if self.device is not None:
            cuda("cudaFree", self.device)
            self.device = None
        if self.host_ptr is not None:
            self.host = None
            cuda("cudaFreeHost", self.host_ptr)
            self.host_ptr = None
