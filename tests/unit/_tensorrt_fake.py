"""A recording fake of the TensorRT and cuda-python surfaces edgecnn uses, for control-flow tests.

Tests built on it prove edgecnn's logic (which calls it makes, in which order, what it does with
the answers), never TensorRT's behaviour. Every public name the fake offers is checked against the
real bindings by tests/unit/test_tensorrt_conformance.py (TensorRT: the strings of the
tensorrt-cu12-bindings 10.3 and 11.4 wheels; CUDA: cuda.bindings.runtime itself), so a test cannot
pass on an API that does not exist.

The fake "GPU" computes ``logits[n, k] = sum(x[n]) * (k + 1)``, so results can be checked.
"""

from __future__ import annotations

import ctypes
import enum
import types

import numpy as np


class _Enum(enum.Enum):
    def __int__(self):
        return self.value if isinstance(self.value, int) else 0


# -- TensorRT ---------------------------------------------------------------------------------

class Severity(_Enum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = Severity

    def __init__(self):
        pass


class Logger(ILogger):
    WARNING = Severity.WARNING

    def __init__(self, min_severity=Severity.WARNING):
        super().__init__()


class IProgressMonitor:
    def __init__(self):
        pass


class NetworkDefinitionCreationFlag(_Enum):
    STRONGLY_TYPED = 1


class BuilderFlag(_Enum):
    GPU_FALLBACK = 0
    TF32 = 1


class MemoryPoolType(_Enum):
    WORKSPACE = 0


class DeviceType(_Enum):
    GPU = 0
    DLA = 1


class ProfilingVerbosity(_Enum):
    LAYER_NAMES_ONLY = 0
    DETAILED = 1


class LayerInformationFormat(_Enum):
    ONELINE = 0
    JSON = 1


class TensorIOMode(_Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class DataType(_Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    INT64 = 8


def nptype(dtype):
    return {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
            DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8,
            DataType.INT64: np.int64}[dtype]


class _Tensor:
    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, shape, dtype


class _Layer:
    def __init__(self, name, dla_ok):
        self.name, self.dla_ok = name, dla_ok


class _Network:
    def __init__(self, flags, world):
        self.flags, self.world = flags, world
        self.num_inputs = self.num_outputs = 1
        self.num_layers = len(world.layers)

    def get_input(self, i):
        return _Tensor("input", (-1, 1, 8, 8), DataType.FLOAT)

    def get_output(self, i):
        return _Tensor("logits", (-1, 4), DataType.FLOAT)

    def get_layer(self, i):
        return self.world.layers[i]


class _ParserError:
    def __init__(self, node, name, op, desc):
        self._v = (node, name, op, desc)

    def node(self):
        return self._v[0]

    def node_name(self):
        return self._v[1]

    def node_operator(self):
        return self._v[2]

    def desc(self):
        return self._v[3]


class OnnxParser:
    def __init__(self, network, logger):
        self.world, self.logger = network.world, logger
        self.num_errors = len(self.world.parse_errors)

    def parse_from_file(self, path):
        self.world.calls.append(("parse_from_file", path))
        for m in self.world.parse_log:
            self.logger.log(Severity.ERROR, m)
        return not self.world.parse_errors

    def get_error(self, i):
        return _ParserError(*self.world.parse_errors[i])


class _TimingCache:
    def __init__(self, data):
        self.data = data

    def serialize(self):
        return b"cache:" + (self.data or b"fresh")


class _Profile:
    def __init__(self, world):
        self.world = world

    def set_shape(self, name, mn, opt, mx):
        self.world.profile = (name, list(mn), list(opt), list(mx))


class _Config:
    def __init__(self, world):
        self.world = world
        self.flags = {BuilderFlag.TF32}  # TF32 is on by default in 10.x and 11.x
        self.builder_optimization_level = 3
        self.progress_monitor = None
        self.default_device_type = DeviceType.GPU
        self.DLA_core = -1
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY

    def set_memory_pool_limit(self, pool, size):
        self.world.calls.append(("set_memory_pool_limit", pool, size))

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)

    def get_flag(self, flag):
        return flag in self.flags

    def add_optimization_profile(self, profile):
        return 0

    def create_timing_cache(self, data):
        return _TimingCache(bytes(data))

    def set_timing_cache(self, cache, ignore_mismatch):
        ok = not (cache.data and cache.data in self.world.refused_caches)
        self.world.calls.append(("set_timing_cache", cache.data, ok))
        if ok:
            self.world.timing_cache = cache
        return ok

    def can_run_on_DLA(self, layer):
        return layer.dla_ok


class Builder:
    def __init__(self, logger):
        self.logger = logger
        self.world = WORLD
        self.num_DLA_cores = WORLD.dla_cores

    def create_network(self, flags):
        self.world.network_flags = flags
        return _Network(flags, self.world)

    def create_builder_config(self):
        self.world.config = _Config(self.world)
        return self.world.config

    def create_optimization_profile(self):
        return _Profile(self.world)

    def build_serialized_network(self, network, config):
        for m in self.world.build_log:
            self.logger.log(Severity.WARNING if m.startswith("warn") else Severity.ERROR, m)
        if self.world.build_fails:
            return None
        self.world.built_with = {"tf32": config.get_flag(BuilderFlag.TF32), "dla": config.DLA_core,
                                 "device": config.default_device_type,
                                 "verbosity": config.profiling_verbosity}
        return b"engine-bytes"


class _Inspector:
    def __init__(self, world):
        self.world = world

    def get_engine_information(self, fmt):
        return self.world.engine_info


class _Context:
    def __init__(self, engine):
        self.engine, self.world = engine, engine.world
        self.shape = None
        self.shape_version = 0
        self.addresses = {}
        self.world.contexts.append(self)

    def set_input_shape(self, name, shape):
        if not self.engine.min_batch <= shape[0] <= self.engine.max_batch:
            return False
        self.shape, self.shape_version = tuple(shape), self.shape_version + 1
        self.world.calls.append(("set_input_shape", id(self), tuple(shape)))
        return True

    def get_tensor_shape(self, name):
        return self.shape if name == "input" else (self.shape[0], 4)

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def execute_async_v3(self, stream_handle):
        assert isinstance(stream_handle, int), "TensorRT takes the stream as an integer handle"
        cuda = self.world.cuda
        if cuda.capturing.get(stream_handle) is not None:
            if self.world.fail_execute_in_capture:
                return False
            cuda.capturing[stream_handle].append(("execute", self, self.shape_version))
            return True
        self._compute()
        return True

    def _compute(self):
        cuda = self.world.cuda
        n = self.shape[0]
        x = cuda.device_array(self.addresses["input"], np.float32, int(np.prod(self.shape)))
        out = cuda.device_array(self.addresses["logits"], np.float32, n * 4)
        sums = x.reshape(n, -1).sum(axis=1)
        out[:] = (sums[:, None] * np.arange(1, 5, dtype=np.float32)[None, :]).ravel()


class _Engine:
    def __init__(self, world):
        self.world = world
        self.num_io_tensors = 2
        self.min_batch, self.max_batch = world.batch_range

    def get_tensor_name(self, i):
        return ("input", "logits")[i]

    def get_tensor_mode(self, name):
        return TensorIOMode.INPUT if name == "input" else TensorIOMode.OUTPUT

    def get_tensor_profile_shape(self, name, profile):
        return ((self.min_batch, 1, 8, 8), (self.min_batch, 1, 8, 8), (self.max_batch, 1, 8, 8))

    def get_tensor_dtype(self, name):
        return DataType.FLOAT

    def create_execution_context(self):
        if self.world.no_context:
            return None
        return _Context(self)

    def create_engine_inspector(self):
        return _Inspector(self.world)


class Runtime:
    def __init__(self, logger):
        self.world = WORLD
        self.DLA_core = -1

    def deserialize_cuda_engine(self, data):
        self.world.runtime_dla_core = self.DLA_core
        return _Engine(self.world)


# -- cuda-python (cuda.bindings.runtime) ------------------------------------------------------

class cudaError_t(_Enum):
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(_Enum):
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2


class cudaStreamCaptureMode(_Enum):
    cudaStreamCaptureModeGlobal = 0


class FakeCudart:
    """Device memory is host memory here; graphs record and replay what was captured."""

    def __init__(self, world):
        self.world = world
        self.cudaMemcpyKind, self.cudaStreamCaptureMode = cudaMemcpyKind, cudaStreamCaptureMode
        self.cudaError_t = cudaError_t
        self._mem = {}
        self.capturing = {}
        self.graphs = {}
        self.calls = []
        self.fail = {}  # call name -> error to return once

    def _ok(self, name, *values):
        self.calls.append(name)
        err = self.fail.pop(name, cudaError_t.cudaSuccess)
        return (err, *values) if err is cudaError_t.cudaSuccess else (err, *([None] * len(values)))

    def _alloc(self, nbytes):
        buf = (ctypes.c_char * max(nbytes, 1))()
        ptr = ctypes.addressof(buf)
        self._mem[ptr] = buf
        return ptr

    def device_array(self, ptr, dtype, count):
        return np.ctypeslib.as_array((ctypes.c_char * (count * np.dtype(dtype).itemsize)).from_address(ptr)) \
            .view(dtype)

    def cudaGetDeviceCount(self):
        return self._ok("cudaGetDeviceCount", self.world.devices)

    def cudaGetErrorString(self, err):
        return (cudaError_t.cudaSuccess, f"fake {err.name}".encode())

    def cudaMalloc(self, n):
        return self._ok("cudaMalloc", self._alloc(n))

    def cudaMallocHost(self, n):
        return self._ok("cudaMallocHost", self._alloc(n))

    def cudaFree(self, ptr):
        self.world.on_free()
        self._mem.pop(ptr)
        return self._ok("cudaFree")

    def cudaFreeHost(self, ptr):
        self._mem.pop(ptr)
        return self._ok("cudaFreeHost")

    def cudaStreamCreate(self):
        return self._ok("cudaStreamCreate", 7)

    def cudaStreamDestroy(self, s):
        return self._ok("cudaStreamDestroy")

    def cudaStreamSynchronize(self, s):
        return self._ok("cudaStreamSynchronize")

    def cudaMemcpyAsync(self, dst, src, n, kind, stream):
        if self.capturing.get(stream) is not None:
            self.capturing[stream].append(("copy", dst, src, n))
        else:
            ctypes.memmove(dst, src, n)
        return self._ok("cudaMemcpyAsync")

    def cudaStreamBeginCapture(self, stream, mode):
        self.capturing[stream] = []
        return self._ok("cudaStreamBeginCapture")

    def cudaStreamEndCapture(self, stream):
        ops = self.capturing.pop(stream)
        gid = len(self.graphs) + 100
        self.graphs[gid] = ops
        return self._ok("cudaStreamEndCapture", gid)

    def cudaGraphInstantiate(self, graph, flags):
        return self._ok("cudaGraphInstantiate", graph + 1000)

    def cudaGraphLaunch(self, graph_exec, stream):
        for op in self.graphs[graph_exec - 1000]:
            if op[0] == "copy":
                ctypes.memmove(op[1], op[2], op[3])
            else:
                _, ctx, version = op
                if ctx.shape_version != version:
                    self.world.stale_replays += 1  # TensorRT: undefined; here: counted
                ctx._compute()
        return self._ok("cudaGraphLaunch")

    def cudaGraphDestroy(self, g):
        return self._ok("cudaGraphDestroy")

    def cudaGraphExecDestroy(self, g):
        return self._ok("cudaGraphExecDestroy")


# -- the world both fakes share ---------------------------------------------------------------

class World:
    def __init__(self):
        self.calls = []
        self.layers = [_Layer("conv", True), _Layer("softmax", False)]
        self.parse_errors = []  # (node index, node name, op, desc)
        self.parse_log = []  # ERROR lines the parser logs
        self.build_log = []  # lines the builder logs ("warn..." -> WARNING, else ERROR)
        self.build_fails = False
        self.refused_caches = set()
        self.dla_cores = 0
        self.engine_info = '{"Layers": [{"Name": "conv", "LayerType": "CaskConvolution"}]}'
        self.batch_range = (1, 8)
        self.no_context = False
        self.fail_execute_in_capture = False
        self.contexts = []
        self.devices = 1
        self.stale_replays = 0
        self.on_free = lambda: None
        self.cuda = FakeCudart(self)
        self.config = self.profile = self.timing_cache = self.built_with = None
        self.runtime_dla_core = None


WORLD = World()

TRT_CLASSES = (ILogger, Logger, IProgressMonitor, NetworkDefinitionCreationFlag, BuilderFlag,
               MemoryPoolType, DeviceType, ProfilingVerbosity, LayerInformationFormat, TensorIOMode,
               DataType, OnnxParser, Builder, Runtime)
TRT_OBJECT_CLASSES = (_Tensor, _Network, _ParserError, _TimingCache, _Profile, _Config, _Inspector,
                      _Context, _Engine)
CUDA_ENUMS = (cudaError_t, cudaMemcpyKind, cudaStreamCaptureMode)


def fresh(version: str = "10.3.0.30"):
    """A new fake ``tensorrt`` module and its world (the cuda fake is ``world.cuda``)."""
    global WORLD
    WORLD = World()
    mod = types.ModuleType("tensorrt")
    mod.__version__ = version
    for cls in TRT_CLASSES:
        setattr(mod, cls.__name__, cls)
    mod.nptype = nptype
    return mod, WORLD


def public_surface() -> dict[str, set[str]]:
    """What the fake offers, for the conformance test: {"tensorrt": names, "cuda": names}."""
    def members(cls):
        names = {n for n in vars(cls) if not n.startswith("_")}
        if issubclass(cls, enum.Enum):
            names |= set(cls.__members__)
        return names

    trt = {"nptype"}
    for cls in TRT_CLASSES:
        trt |= {cls.__name__} | members(cls)
    for cls in TRT_OBJECT_CLASSES:
        trt |= members(cls)
    trt |= {"Severity", "name", "shape", "dtype", "num_inputs", "num_outputs", "num_layers",
            "num_errors", "num_io_tensors", "num_DLA_cores", "builder_optimization_level",
            "progress_monitor", "default_device_type", "DLA_core", "profiling_verbosity"}
    trt -= {"world", "flags", "logger", "engine", "shape_version", "addresses", "min_batch",
            "max_batch", "dla_ok", "data"}  # the fake's own bookkeeping, never read by edgecnn
    cuda = {n for n in vars(FakeCudart) if n.startswith("cuda")} | {c.__name__ for c in CUDA_ENUMS}
    for cls in CUDA_ENUMS:
        cuda |= {f"{cls.__name__}.{m}" for m in cls.__members__}
    return {"tensorrt": trt, "cuda": cuda}
