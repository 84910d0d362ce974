"""LiteRT backend of the runtime: runs model.{fp32,fp16,int8}.tflite.

By default through LiteRT's CompiledModel API (``ai_edge_litert.compiled_model``, CPU
accelerator, XNNPACK), the API LiteRT's own ``benchmark_litert_model`` times, so edgecnn runs a
model exactly as that tool does (buffers made once, reused every run). The Interpreter stays
as the fallback and behind ``api="interpreter"``; it comes from whichever of these is
installed, in this order:
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

from edgecnn.errors import BackendUnavailableError, InputError, MissingDependencyError, first_line
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
                 batch_mode: str = "auto", api: str | None = None):
        """``batch_mode``: 'resize' (resize the input to the batch), 'loop' (one image per
        run) or 'auto' (resize, falling back to loop where the graph has a fixed batch).

        ``api``: 'compiled' (LiteRT's CompiledModel, the API ``benchmark_litert_model`` times;
        runs int8 through XNNPACK's integer kernels), 'interpreter' (the TFLite Interpreter) or
        None: compiled where ai_edge_litert provides it and it loads the model, else the
        interpreter. ``self.api`` says which one runs; ``self.api_note`` why, after a fallback.
        """
        super().__init__(manifest, artifact, path)
        if batch_mode not in ("auto", "resize", "loop"):
            raise InputError(f"batch_mode must be auto, resize or loop, got {batch_mode!r}")
        if api not in (None, "compiled", "interpreter"):
            raise InputError(f"api must be compiled or interpreter, got {api!r}")
        check_tflite_file(path)
        from edgecnn.runtime.ort import default_threads

        self.threads = threads or default_threads()
        self.provider = litert_provider()
        # tensor types, quantisation and batch signature, read once from the file (the
        # CompiledModel's tensor details carry no scale/zero point)
        self._in, self._out = _io_details(path)
        self._model_batch = int(self._in["shape"][0])
        self._dynamic = int(self._in["shape_signature"][0]) == -1
        self.batch_mode = "resize" if self._dynamic else batch_mode
        self._resize_ok: bool | None = {"auto": None, "resize": True, "loop": False}[self.batch_mode]
        self.api_note: str | None = None
        self.float_input_note: str | None = None  # why float input takes a slower way
        self._runner = None
        if api in (None, "compiled"):
            if compiled_model_available():
                try:
                    self._runner = self._compiled_runner()
                except (ValueError, RuntimeError) as exc:
                    if api == "compiled":
                        raise _load_error(path, exc) from exc
                    self.api_note = f"CompiledModel could not load it: {first_line(exc)}"
            elif api == "compiled":
                raise BackendUnavailableError(
                    f"api='compiled' needs LiteRT's CompiledModel (ai_edge_litert.compiled_model)"
                    f", which {self.provider or 'no installed package'} does not provide; "
                    f"pip install 'edgecnn[litert]' or use api='interpreter'")
            else:
                self.api_note = f"{self.provider} has no CompiledModel"
        if self._runner is None:
            self._runner = _InterpreterRunner(path, self.threads)
        self.api = self._runner.api
        self._runner.batch = self._model_batch
        # int8/uint8 input, float callers: a second CompiledModel of the same file with a
        # QUANTIZE op in front (litert_float_input.py), made on the first float call; None:
        # not tried yet, False: quantise in numpy instead (``float_input_note`` says why)
        self._float_runner = None if (self.api == "compiled"
                                      and self._in["dtype"] != np.float32) else False
        # neither a TFLite Interpreter nor a CompiledModel with its bound buffers is
        # thread-safe: one Session used from several threads runs one batch at a time
        self._lock = threading.Lock()
        self._scratch: np.ndarray | None = None  # float32 staging for the quantised input
        # the steady state (dtype, shape, runner): a batch like the last one that went to
        # LiteRT as it was, checked then, on a runner not resized since, goes straight there
        self._fast: tuple | None = None
        self._as_given: tuple | None = None  # what the current call passed on as it was
        self._out_table = _dequantize_table(self._out)

    def _compiled_runner(self) -> "_CompiledRunner":
        """The file's CompiledModel; for a float32 NHWC file, a copy of it that takes the
        caller's NCHW batch (a TRANSPOSE in front, litert_float_input.py), so no layout copy
        runs in numpy; the file itself where that copy cannot be made."""
        if self._in["dtype"] == np.float32 and self.input_spec.layout == "NHWC":
            try:
                with open(self.path, "rb") as f:
                    return self._float_input_copy(f.read(), nchw=True)
            except Exception as exc:  # noqa: BLE001 - the file as it is, with a layout copy
                self.float_input_note = f"copying the input into NHWC: {first_line(exc)}"
        return _CompiledRunner(self.path, self.threads, self._dynamic)

    def _float_input_copy(self, model: bytes, nchw: bool) -> "_CompiledRunner":
        """A CompiledModel of ``model`` (the file's bytes) taking float input: a QUANTIZE op in
        front of an integer input, and with ``nchw`` the caller's NCHW layout (a TRANSPOSE)."""
        from edgecnn.runtime.litert_float_input import float_input_model

        runner = _CompiledRunner(self.path, self.threads, self._dynamic,
                                 data=float_input_model(model, nchw=nchw))
        runner.takes_nchw = nchw
        return runner

    # -- quantisation from the tensor's own parameters ------------------------------
    @staticmethod
    def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
        """float -> the tensor's integer type with its scale and zero point (a new array)."""
        dtype = detail["dtype"]
        if dtype == np.float32:
            return x
        out = np.empty(x.shape, dtype)
        _quantize_into(out, x, detail, np.empty(x.shape, np.float32), nhwc=False)
        return out

    def _logits(self, y: np.ndarray) -> np.ndarray:
        """LiteRT's output as float32 logits (a new array): one table lookup for 8-bit
        outputs (the same values as ``_dequantize``, in one pass instead of three)."""
        if self._out_table is not None:
            return np.take(self._out_table, y.view(np.uint8))
        return self._dequantize(y, self._out)

    @staticmethod
    def _dequantize(y: np.ndarray, detail: dict) -> np.ndarray:
        """The output as float32 logits: always a new array (``y`` may be a reused buffer)."""
        if detail["dtype"] == np.float32:
            return np.array(y, dtype=np.float32)
        scale, zero = detail["quantization"]
        if scale == 0:
            return y.astype(np.float32)
        out = y.astype(np.float32)
        if zero:
            out -= np.float32(zero)
        out *= np.float32(scale)
        return out

    # -- running --------------------------------------------------------------------
    # Session.run hands float32 NCHW straight here (no NHWC copy first). With CompiledModel, an
    # int8 model's float caller runs a copy of the model with a QUANTIZE op (and, for an NHWC
    # file, a TRANSPOSE) in front: the caller's NCHW batch is written to LiteRT as it is
    # (litert_float_input.py; 0.10 ms a resnet18 call faster than copying it into NHWC first
    # on a Zen 5 EPYC, and numpy quantisation cost 0.29 ms; benchmarks/litert_overhead.py).
    # A float NHWC model runs as such a copy with only the TRANSPOSE (_compiled_runner).
    # Otherwise (Interpreter, or the copy could not be made) the layout change rides on the
    # numpy quantisation's first pass, into buffers made once per batch size. A caller that
    # already holds the model's own input (int8/uint8 NHWC, quantised with the input's scale
    # and zero point) skips the conversion: Session.run passes it on to the file's own model.
    transposes_input = True

    def _fill(self, dst: np.ndarray, batch: np.ndarray) -> None:
        """Float32 NCHW ``batch`` -> ``dst`` (the model's dtype and layout), in place."""
        nhwc = self.input_spec.layout == "NHWC"
        if dst.dtype == np.float32:
            _copy_layout(dst, batch, nhwc)
            return
        scratch = self._scratch
        if scratch is None or scratch.shape != dst.shape:
            scratch = self._scratch = np.empty(dst.shape, np.float32)
        _quantize_into(dst, batch, self._in, scratch, nhwc)

    def _float_input_runner(self):
        """The CompiledModel that takes float input (see ``_float_runner``), or None."""
        if self._float_runner is None:
            with open(self.path, "rb") as f:
                model = f.read()
            # NCHW float in (a TRANSPOSE in the model) where the file is NHWC, else the
            # file's own layout; any failure of both: numpy quantisation instead
            tries = [True, False] if self.input_spec.layout == "NHWC" else [False]
            for nchw in tries:
                try:
                    runner = self._float_input_copy(model, nchw)
                except Exception as exc:  # noqa: BLE001 - the next way, or numpy
                    failure = first_line(exc)
                    continue
                runner.batch = self._model_batch
                self._float_runner = runner
                break
            else:
                self._float_runner = False
                self.float_input_note = f"quantising in numpy: {failure}"
        return self._float_runner or None

    def _invoke(self, batch: np.ndarray, native: bool = False) -> np.ndarray:
        runner = self._runner
        if not native and self._float_runner is not False:
            runner = self._float_input_runner() or self._runner
        n = batch.shape[0]
        as_given = native or runner.takes_nchw or self.input_spec.layout != "NHWC"
        if n != runner.batch:
            self._fast = None  # its buffers change
            shape = list(batch.shape) if as_given else \
                [n, batch.shape[2], batch.shape[3], batch.shape[1]]
            runner.resize(shape)
            runner.batch = n
        if native or runner.takes_nchw:  # the caller's array goes to LiteRT as it is
            y = runner.invoke(batch, self._out["dtype"])
            self._as_given = (batch.dtype, batch.shape, runner)
        elif runner is not self._runner:  # float in: LiteRT quantises (its QUANTIZE op)
            x = runner.staging(np.float32)
            _copy_layout(x, batch, self.input_spec.layout == "NHWC")
            y = runner.invoke(x, self._out["dtype"])
        else:
            x = runner.staging(self._in["dtype"])
            self._fill(x, batch)
            y = runner.invoke(x, self._out["dtype"])
        return self._logits(y)

    def run(self, batch: np.ndarray) -> np.ndarray:
        # the steady state skips the checks and routing (about 1 % of a resnet18 int8 call,
        # benchmarks/litert_overhead.py): the same dtype and shape as the last call that
        # went to LiteRT as it was, on a runner not resized since
        fast = self._fast
        if (fast is not None and type(batch) is np.ndarray and batch.dtype == fast[0]
                and batch.shape == fast[1] and batch.flags.c_contiguous):
            with self._lock:
                if self._fast is fast:
                    try:
                        return self._logits(fast[2].invoke(batch, self._out["dtype"]))
                    except (ValueError, RuntimeError) as exc:
                        raise self._run_error(batch, exc) from exc
        return super().run(batch)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self._run_guarded(batch, native=False)

    def _run_native(self, batch: np.ndarray) -> np.ndarray:
        return self._run_guarded(batch, native=True)

    def _run_guarded(self, batch: np.ndarray, native: bool) -> np.ndarray:
        with self._lock:
            self._as_given = None
            try:
                out = self._run_locked(batch, native=native)
            except (ValueError, RuntimeError) as exc:
                raise self._run_error(batch, exc) from exc
            given = self._as_given
            if given is not None and given[1] == batch.shape and self._output_ok(
                    out, batch.shape[0]):
                self._fast = given  # one run of the whole batch, as it was: the steady state
            return out

    def _run_error(self, batch: np.ndarray, exc: Exception) -> BackendUnavailableError:
        # the input was checked against the manifest: the graph itself cannot run it
        return BackendUnavailableError(
            f"LiteRT failed to run {os.path.basename(self.path)} on input "
            f"{tuple(batch.shape)}: {first_line(exc)}; the model file is damaged or does not "
            f"match its manifest; re-export the bundle")

    def _run_locked(self, batch: np.ndarray, native: bool) -> np.ndarray:
        n = batch.shape[0]
        if n == self._model_batch or self.batch_mode == "resize" or self._resize_ok:
            return self._invoke(batch, native)
        if self.batch_mode == "loop" or self._resize_ok is False:
            return self._loop(batch, native)
        # auto, first batch of another size: a graph traced at batch 1 may hold reshapes that
        # do not follow a resized input; keep resizing only when the result has the right shape.
        try:
            out = self._invoke(batch, native)
            self._resize_ok = out.shape[0] == n
        except (ValueError, RuntimeError):
            self._resize_ok = False
            self._fast = None
            for runner in (self._runner, self._float_runner):  # force a resize back
                if runner:
                    runner.batch = -1
        if not self._resize_ok:
            return self._loop(batch, native)
        return out

    def _loop(self, batch: np.ndarray, native: bool) -> np.ndarray:
        m = self._model_batch
        chunks = [batch[i:i + m] for i in range(0, batch.shape[0], m)]
        return np.concatenate([self._invoke(c, native) for c in chunks])

    @property
    def raw(self):
        """The underlying LiteRT object: a CompiledModel or a TFLite Interpreter."""
        return self._runner.raw if self._runner is not None else None

    def close(self) -> None:
        self._fast = None
        self._runner = None
        self._float_runner = False


def _dequantize_table(detail: dict) -> np.ndarray | None:
    """For an int8/uint8 output: the float32 logit of each of its 256 codes, indexed by the
    code's bits as uint8 (``LiteRTSession._dequantize``'s arithmetic); None otherwise."""
    dtype = np.dtype(detail["dtype"])
    if dtype not in (np.dtype(np.int8), np.dtype(np.uint8)):
        return None
    return LiteRTSession._dequantize(np.arange(256, dtype=np.uint8).view(dtype), detail)


def _copy_layout(dst: np.ndarray, src: np.ndarray, nhwc: bool, op=None, arg=None) -> None:
    """dst = src (NCHW) in ``dst``'s layout; with ``op``, dst = op(src, arg). NCHW -> NHWC one
    channel at a time: numpy's generic transposed copy is 2-3x slower than C strided copies."""
    if not nhwc:
        if op is None:
            np.copyto(dst, src)
        else:
            op(src, arg, out=dst)
        return
    for c in range(src.shape[1]):
        if op is None:
            np.copyto(dst[..., c], src[:, c])
        else:
            op(src[:, c], arg, out=dst[..., c])


def _quantize_into(dst: np.ndarray, src: np.ndarray, detail: dict, scratch: np.ndarray,
                   nhwc: bool = False) -> None:
    """dst[...] = clip(rint(src / scale) + zero_point) in the integer type of ``dst``, through
    the float32 ``scratch`` (same shape as ``dst``); ``src`` is NCHW and ``nhwc`` says whether
    ``dst`` is NHWC. No allocation; the layout change rides on the division."""
    scale, zero = detail["quantization"]
    if scale == 0:
        _copy_layout(scratch, src, nhwc)
        np.copyto(dst, scratch, casting="unsafe")
        return
    info = np.iinfo(dst.dtype)
    _copy_layout(scratch, src, nhwc, np.divide, scale)
    np.rint(scratch, out=scratch)
    if zero:
        scratch += np.float32(zero)
    np.clip(scratch, info.min, info.max, out=dst, casting="unsafe")


def compiled_model_available() -> bool:
    """Whether ai_edge_litert provides the CompiledModel API (looked up, not imported)."""
    try:
        return importlib.util.find_spec("ai_edge_litert.compiled_model") is not None
    except (ImportError, ValueError):
        return False


def _load_error(path: str, exc: BaseException) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"LiteRT cannot load {os.path.basename(path)}: {first_line(exc)}; the file is "
        f"damaged or uses ops this runtime lacks; re-export the bundle or upgrade "
        f"ai-edge-litert")


def _io_details(path: str) -> tuple[dict, dict]:
    """The one input's and one output's Interpreter details (dtype, shape, shape_signature,
    quantization), read without allocating tensors or applying delegates."""
    Interpreter = interpreter_class()
    kwargs = {}
    resolver = getattr(importlib.import_module(Interpreter.__module__), "OpResolverType", None)
    if resolver is not None:  # no XNNPACK graph rewrite just to read the I/O details
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        interp = Interpreter(model_path=path, num_threads=1, **kwargs)
        ins, outs = interp.get_input_details(), interp.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise _load_error(path, exc) from exc
    if len(ins) != 1 or len(outs) != 1:
        raise BackendUnavailableError(
            f"{os.path.basename(path)} has {len(ins)} inputs and {len(outs)} outputs; edgecnn "
            f"runs one-input one-output classifiers (damaged file?); re-export the bundle")
    return ins[0], outs[0]


class _InterpreterRunner:
    """The TFLite Interpreter (XNNPACK is its default delegate for float and int8)."""

    api = "interpreter"
    takes_nchw = False

    def __init__(self, path: str, threads: int):
        try:
            self.raw = interpreter_class()(model_path=path, num_threads=threads)
            self.raw.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise _load_error(path, exc) from exc
        self._in = self.raw.get_input_details()[0]["index"]
        self._out = self.raw.get_output_details()[0]["index"]

        self._buffer()

    def _buffer(self) -> None:
        d = self.raw.get_input_details()[0]
        self._x = np.empty(tuple(int(v) for v in d["shape"]), d["dtype"])

    def resize(self, shape: list[int]) -> None:
        self.raw.resize_tensor_input(self._in, shape)
        self.raw.allocate_tensors()
        self._buffer()

    def staging(self, dtype) -> np.ndarray:
        """A host array of the input's shape and type, made once per shape."""
        return self._x

    def invoke(self, x: np.ndarray, out_dtype) -> np.ndarray:
        self.raw.set_tensor(self._in, x)
        self.raw.invoke()
        return self.raw.get_tensor(self._out)


_ENV = None
_ENV_LOCK = threading.Lock()


def _environment():
    """One LiteRT Environment per process, shared by every CompiledModel (creating one
    registers the accelerators and probes vendor plugins: not free)."""
    global _ENV
    with _ENV_LOCK:
        if _ENV is None:
            from ai_edge_litert.compiled_model import Environment

            _ENV = Environment.create()
        return _ENV


class _CompiledRunner:
    """LiteRT's CompiledModel on the CPU accelerator (XNNPACK), the way LiteRT's own
    ``benchmark_litert_model`` runs a model: buffers created once and reused every run."""

    api = "compiled"
    takes_nchw = False  # True: a float-input copy whose input is the caller's NCHW batch

    def __init__(self, path: str, threads: int, dynamic: bool, data: bytes | None = None):
        """``data``: the model's bytes to compile instead of the file at ``path``."""
        from ai_edge_litert.compiled_model import CompiledModel, CpuOptions, HardwareAccelerator
        from ai_edge_litert.compiled_model import Options

        options = Options(hardware_accelerators=HardwareAccelerator.CPU,
                          cpu_options=CpuOptions(num_threads=threads))
        if data is None:
            self.raw = CompiledModel.from_file(path, environment=_environment(), options=options)
        else:
            self._data = data  # LiteRT reads the model from this buffer: keep it alive
            self.raw = CompiledModel.from_buffer(data, environment=_environment(),
                                                 options=options)
        if self.raw.get_num_signatures() < 1:
            raise ValueError("the model has no signature to run")
        self._dynamic = dynamic
        self._buffers()

    def _buffers(self) -> None:
        self._ins = self.raw.create_input_buffers(0)
        self._outs = self.raw.create_output_buffers(0)
        if len(self._ins) != 1 or len(self._outs) != 1:
            raise ValueError(f"{len(self._ins)} inputs and {len(self._outs)} outputs")
        self._out_shape = tuple(int(d) for d in self._outs[0].get_tensor_details()["shape"])
        self._out_size = int(np.prod(self._out_shape))
        self._x = None  # host staging of the input, made on first use for this shape

    def resize(self, shape: list[int]) -> None:
        # a graph exported with a fixed batch has no dynamic dimension: non-strict resize
        self.raw.resize_input_tensor(0, shape, 0, strict=self._dynamic)
        self._buffers()

    def staging(self, dtype) -> np.ndarray:
        """A host array of the input's shape and type, made once per shape: the session
        converts the input into it, then one copy goes into LiteRT's buffer (a host-memory
        TensorBuffer would save that copy, but LiteRT 2.x cannot bind one to a shaped input:
        "no dims_signature")."""
        if self._x is None:
            shape = tuple(int(d) for d in self._ins[0].get_tensor_details()["shape"])
            self._x = np.empty(shape, dtype)
        return self._x

    def invoke(self, x: np.ndarray, out_dtype) -> np.ndarray:
        self._ins[0].write(x)
        self.raw.run_by_index(0, self._ins, self._outs)
        return self._outs[0].read(self._out_size, out_dtype).reshape(self._out_shape)

