"""edgecnn's CUDA wrapper against the real ``cuda.bindings.runtime`` (cuda-python), no GPU needed.

cuda-python imports without a GPU and returns real ``(cudaError_t, value)`` tuples; on a machine
without a GPU or driver every call fails with a real error code. This checks that edgecnn turns
them into one-line BackendUnavailableErrors, that every CUDA name edgecnn (and the recording fake
in _tensorrt_fake.py) uses exists in the real module, and that stream handles reach TensorRT as
integers without the ``int(handle)`` that cuda-bindings 12.9.1+/13 deprecates.
Skipped, with the reason, where cuda-python is not installed.
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import pytest

rt = pytest.importorskip("cuda.bindings.runtime",
                         reason="cuda-python is not installed (pip install 'cuda-python>=12.6,<13')")

from edgecnn.errors import BackendUnavailableError  # noqa: E402
from edgecnn.runtime.trt_cuda import CudaRuntime, native_handle  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _has_gpu() -> bool:
    err, n = rt.cudaGetDeviceCount()
    return int(err) == 0 and n > 0


def test_import_cudart_finds_the_real_module():
    from edgecnn.runtime.trt_engine_info import import_cudart

    assert import_cudart("testing") is rt


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU: the no-device path cannot be seen")
@pytest.mark.parametrize("call, args", [("cudaGetDeviceCount", ()), ("cudaMalloc", (16,)),
                                        ("cudaStreamCreate", ()), ("cudaMallocHost", (16,))])
def test_no_device_is_one_clear_line(call, args):
    cuda = CudaRuntime(rt)
    with pytest.raises(BackendUnavailableError) as exc:
        cuda(call, *args) if call != "cudaGetDeviceCount" else cuda.device_count()
    text = str(exc.value)
    assert "\n" not in text and f"CUDA {call} failed (cudaError" in text
    assert "driver" in text.lower()


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU")
def test_session_without_a_device_stops_with_backend_unavailable(monkeypatch):
    """The TensorRT session on a real cuda-python with no GPU: a clear error before any TensorRT
    object is made (the TensorRT module here is the recording fake; it is never reached)."""
    import _tensorrt_fake as fake
    import edgecnn.runtime.tensorrt as rt_trt
    from _tensorrt_lib import engine_metadata, io_specs, make_manifest
    from edgecnn.manifest import Artifact

    trt, _ = fake.fresh()
    monkeypatch.setattr(rt_trt, "import_tensorrt", lambda purpose: trt)
    inputs, outputs = io_specs((1, 8, 8), 4)
    art = Artifact("model.fp16.engine", "0" * 64, "tensorrt", "fp16", inputs, outputs,
                   details={"engine": engine_metadata("desktop").to_dict()})
    with pytest.raises(BackendUnavailableError, match="CUDA cudaGetDeviceCount failed"):
        rt_trt.TensorRTSession(make_manifest(), art, "/nonexistent.engine", check_platform=False)


def test_stream_handle_is_an_int_without_deprecated_int():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert native_handle(rt.cudaStream_t(5)) == 5
        assert native_handle(rt.cudaGraphExec_t(7)) == 7
    assert native_handle(11) == 11


def _cuda_names_edgecnn_uses() -> set[str]:
    """``cuda("cudaX", ...)`` names and ``rt.X`` / ``cudaMemcpyKind.Y`` attributes in the runtime."""
    names = set()
    for rel in ("edgecnn/runtime/tensorrt.py", "edgecnn/runtime/trt_cuda.py"):
        for node in ast.walk(ast.parse((ROOT / rel).read_text())):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str) and node.args[0].value.startswith("cuda"):
                names.add(node.args[0].value)
            if isinstance(node, ast.Attribute) and node.attr.startswith("cuda"):
                base = node.value
                if isinstance(base, ast.Attribute) and base.attr.startswith("cuda"):
                    names.add(f"{base.attr}.{node.attr}")
                else:
                    names.add(node.attr)
    return names


def test_every_cuda_name_edgecnn_uses_exists():
    names = _cuda_names_edgecnn_uses()
    assert {"cudaMalloc", "cudaGraphLaunch", "cudaMemcpyKind.cudaMemcpyHostToDevice",
            "cudaStreamCaptureMode.cudaStreamCaptureModeGlobal"} <= names
    missing = [n for n in sorted(names) if not _exists(n)]
    assert not missing, f"not in cuda.bindings.runtime: {missing}"


def test_the_recording_fake_offers_only_real_cuda_names():
    from _tensorrt_fake import public_surface

    missing = [n for n in sorted(public_surface()["cuda"]) if not _exists(n)]
    assert not missing, f"the fake offers CUDA names cuda.bindings.runtime lacks: {missing}"


def _exists(dotted: str) -> bool:
    obj = rt
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True
