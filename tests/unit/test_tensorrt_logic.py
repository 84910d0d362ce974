"""edgecnn's TensorRT control flow, on a recording fake: these prove edgecnn's logic, not TensorRT's.

Every name the fake (tests/unit/_tensorrt_fake.py) offers is checked against the real
tensorrt-cu12-bindings 10.3 / 11.4 strings and the real cuda.bindings.runtime by
test_tensorrt_conformance.py and test_tensorrt_cuda.py. What TensorRT does with these calls on a
GPU is scripts/gpu_acceptance.sh's job.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import _tensorrt_fake as fake
from edgecnn.errors import BackendUnavailableError, ExportError, InputError
from edgecnn.tensorrt.plan import BuildPlan


def _plan(precision="fp32", **kw) -> BuildPlan:
    base = dict(precision=precision, trt_onnx=f"model.{precision}.trt.onnx", source_onnx="model.onnx",
                source_onnx_sha256="0" * 64, input_name="input", input_chw=[1, 8, 8], batch_min=1,
                batch_opt=8, batch_max=32, workspace_mb=64, builder_optimization_level=3,
                trt_version_min="10.3", trt_version_max="11.99",
                timing_cache="trt_timing.{trt}.sm{sm}.{gpu}.cache")
    base.update(kw)
    return BuildPlan(**base)


def _build(tmp_path, plan=None, dla_core=None, cache=None, version="10.3.0.30", world_setup=None):
    from edgecnn.tensorrt.builder import build_engine
    from edgecnn.tensorrt.versions import build_strategy

    trt, world = fake.fresh(version)
    if world_setup:
        world_setup(world)
    logs = []
    onnx_file = tmp_path / "model.fp32.trt.onnx"
    onnx_file.write_bytes(b"not parsed by the fake")
    built = build_engine(trt, onnx_file, plan or _plan(), build_strategy(version), dla_core, cache,
                         logs.append)
    return built, world, logs


# -- builder ----------------------------------------------------------------------------------

def test_edgecnn_logic_fp32_clears_tf32_and_records_it(tmp_path):
    built, world, _ = _build(tmp_path, _plan("fp32"))
    assert world.built_with["tf32"] is False and built.tf32 is False
    built16, world16, _ = _build(tmp_path, _plan("fp16"))
    assert world16.built_with["tf32"] is True and built16.tf32 is True


def test_edgecnn_logic_tf32_lands_in_engine_metadata():
    from _tensorrt_lib import recorded_machine
    from edgecnn.tensorrt.metadata import built_engine_metadata

    meta = built_engine_metadata("10.8.0.43", recorded_machine("desktop"), "8.9", _plan("fp32"), None,
                                 "now", tf32=False)
    assert meta.to_dict()["tf32"] is False


def test_edgecnn_logic_refused_timing_cache_falls_back_to_a_fresh_one(tmp_path):
    built, world, logs = _build(tmp_path, cache=b"stale",
                                world_setup=lambda w: w.refused_caches.add(b"stale"))
    sets = [c for c in world.calls if c[0] == "set_timing_cache"]
    assert sets == [("set_timing_cache", b"stale", False), ("set_timing_cache", b"", True)]
    assert built.timing_cache_reused is False and built.timing_cache == b"cache:fresh"
    assert any("refused the timing cache" in m for m in logs)
    ok, _, _ = _build(tmp_path, cache=b"good")
    assert ok.timing_cache_reused is True and ok.timing_cache == b"cache:good"


def test_edgecnn_logic_parser_errors_and_logged_errors_reach_the_exception(tmp_path):
    def setup(w):
        w.parse_errors = [(3, "/conv/Conv", "Conv", "weights must be constant")]
        w.parse_log = ["ModelImporter.cpp:123: failed to import node 3"]

    with pytest.raises(ExportError) as exc:
        _build(tmp_path, world_setup=setup)
    text = str(exc.value)
    assert "node 3 '/conv/Conv' (Conv)" in text and "weights must be constant" in text
    assert "TensorRT: ModelImporter.cpp:123" in text


def test_edgecnn_logic_build_failure_carries_the_builder_errors(tmp_path):
    def setup(w):
        w.build_fails = True
        w.build_log = ["warn: slow tactic", "Error Code 4: Internal Error (out of memory)"]

    with pytest.raises(ExportError, match=r"TensorRT: Error Code 4: Internal Error \(out of memory\)") as exc:
        _build(tmp_path, world_setup=setup)
    assert "see the builder log above" not in str(exc.value) and "slow tactic" not in str(exc.value)


def test_edgecnn_logic_build_keeps_warnings_for_the_report(tmp_path):
    built, _, logs = _build(tmp_path, world_setup=lambda w: w.build_log.append("warn: int64 weights cast"))
    assert built.warnings == ["warn: int64 weights cast"]
    assert any("TensorRT warning: warn: int64 weights cast" in m for m in logs)


def test_edgecnn_logic_io_specs_come_from_the_network_without_onnx(tmp_path, monkeypatch):
    """Defect 2: no onnx on the device; specs from the parsed network, parser errors still named."""
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx -> ImportError
    built, _, _ = _build(tmp_path)
    assert [(s.name, s.shape, s.dtype, s.layout) for s in built.inputs] == [("input", [-1, 1, 8, 8],
                                                                            "float32", "NCHW")]
    assert [(s.name, s.shape) for s in built.outputs] == [("logits", [-1, 4])]
    with pytest.raises(ExportError, match="node 0 'n0' \\(Unique\\)"):
        _build(tmp_path, world_setup=lambda w: w.parse_errors.append((0, "n0", "Unique", "no importer")))


def test_edgecnn_logic_dla_build_is_static_and_checked(tmp_path):
    def setup(w):
        w.dla_cores = 2
        w.engine_info = '{"Layers": [{"Name": "conv", "LayerType": "DLA"}, {"Name": "softmax"}]}'

    built, world, _ = _build(tmp_path, _plan("int8"), dla_core=1, world_setup=setup)
    assert world.profile[1:] == ([8, 1, 8, 8], [8, 1, 8, 8], [8, 1, 8, 8])  # static at opt
    assert built.profile[2] == [8, 1, 8, 8] and built.dla_layers == 1
    assert world.built_with["dla"] == 1 and world.built_with["device"] is fake.DeviceType.DLA
    assert world.built_with["verbosity"] is fake.ProfilingVerbosity.DETAILED
    assert world.runtime_dla_core == 1  # the inspector's runtime targets the same core


def test_edgecnn_logic_dla_with_no_dla_layers_fails(tmp_path):
    def none_eligible(w):
        w.dla_cores = 2
        w.layers = [fake._Layer("topk", False)]

    with pytest.raises(ExportError, match="no layer of this network runs on DLA core 0"):
        _build(tmp_path, _plan("int8"), dla_core=0, world_setup=none_eligible)

    def none_placed(w):
        w.dla_cores = 2  # eligible before the build, but the engine put everything on the GPU

    with pytest.raises(ExportError, match="in the built engine: 0 of 1 layers"):
        _build(tmp_path, _plan("int8"), dla_core=0, world_setup=none_placed)


def test_count_dla_layers_reads_json_and_lines():
    from edgecnn.tensorrt.dla import count_dla_layers

    assert count_dla_layers({"Layers": [{"LayerType": "DLA"}, {"LayerType": "Convolution"}]}) == (1, 2)
    assert count_dla_layers('{"Layers": ["conv on DLA", "softmax"]}') == (1, 2)
    assert count_dla_layers("") == (0, 0)


# -- runtime session --------------------------------------------------------------------------

def _session(monkeypatch, world_setup=None, cuda_graph=False, dla_core=None):
    import edgecnn.runtime.tensorrt as rt_trt
    from _tensorrt_lib import engine_metadata, io_specs, make_manifest
    from edgecnn.manifest import Artifact

    trt, world = fake.fresh()
    if world_setup:
        world_setup(world)
    monkeypatch.setattr(rt_trt, "import_tensorrt", lambda purpose: trt)
    monkeypatch.setattr(rt_trt, "import_cudart", lambda purpose: world.cuda)
    meta = engine_metadata("desktop")
    meta.dla_core = dla_core
    inputs, outputs = io_specs((1, 8, 8), 4)
    art = Artifact("model.fp16.engine", "0" * 64, "tensorrt", "fp16", inputs, outputs,
                   details={"engine": meta.to_dict()})
    path = _engine_file()
    sess = rt_trt.TensorRTSession(make_manifest(), art, str(path), cuda_graph=cuda_graph,
                                  check_platform=False)
    return sess, world


def _engine_file():
    import tempfile
    from pathlib import Path

    p = Path(tempfile.mkdtemp()) / "model.fp16.engine"
    p.write_bytes(b"engine")
    return p


def _expected(x):
    return x.reshape(x.shape[0], -1).sum(axis=1)[:, None] * np.arange(1, 5, dtype=np.float32)


def test_edgecnn_logic_graph_replay_survives_shape_changes(monkeypatch):
    """Defect 7: batch 1 (captured), batch 4, batch 1 again: the graph's context was never
    reshaped after its capture, and every result is right."""
    sess, world = _session(monkeypatch, cuda_graph=True)
    rng = np.random.default_rng(0)
    for n in (1, 1, 4, 1, 3, 1):
        x = rng.standard_normal((n, 1, 8, 8)).astype(np.float32)
        np.testing.assert_allclose(sess.run(x), _expected(x), rtol=1e-5, atol=1e-5)
    assert world.stale_replays == 0
    assert world.cuda.calls.count("cudaStreamBeginCapture") == 1
    assert world.cuda.calls.count("cudaGraphLaunch") == 4  # every batch-1 run, the first included
    graph_ctx = sess._graph_ctx
    assert graph_ctx is not sess._context
    shapes = [c[2] for c in world.calls if c[0] == "set_input_shape" and c[1] == id(graph_ctx)]
    assert shapes == [(1, 1, 8, 8)]  # set once, before the capture
    sess.close()


def test_edgecnn_logic_failed_capture_ends_capture_and_falls_back(monkeypatch):
    sess, world = _session(monkeypatch, cuda_graph=True,
                           world_setup=lambda w: setattr(w, "fail_execute_in_capture", True))
    x = np.ones((1, 1, 8, 8), np.float32)
    np.testing.assert_allclose(sess.run(x), _expected(x))
    assert world.cuda.capturing == {}  # the stream is not left in capture mode
    assert world.cuda.calls.count("cudaStreamEndCapture") == 1
    assert sess.graph_note and "capture failed" in sess.graph_note
    np.testing.assert_allclose(sess.run(x), _expected(x))
    assert "cudaGraphLaunch" not in world.cuda.calls
    sess.close()


def test_edgecnn_logic_failed_instantiate_falls_back(monkeypatch):
    sess, world = _session(monkeypatch, cuda_graph=True, world_setup=lambda w: w.cuda.fail.update(
        cudaGraphInstantiate=fake.cudaError_t.cudaErrorInvalidValue))
    x = np.ones((1, 1, 8, 8), np.float32)
    np.testing.assert_allclose(sess.run(x), _expected(x))
    assert "cudaGraphDestroy" in world.cuda.calls and sess.graph_note
    sess.close()


def test_edgecnn_logic_no_execution_context_is_a_clear_error(monkeypatch):
    with pytest.raises(BackendUnavailableError, match="could not create an execution context"):
        _session(monkeypatch, world_setup=lambda w: setattr(w, "no_context", True))


def test_edgecnn_logic_refused_input_shape_is_an_input_error(monkeypatch):
    sess, _ = _session(monkeypatch)
    sess._max_batch = 64  # get past the base class's own batch check: TensorRT refuses 16 > 8
    with pytest.raises(InputError, match=r"refused input shape \(16, 1, 8, 8\).*batch 1..8"):
        sess._run(np.zeros((16, 1, 8, 8), np.float32))
    sess.close()


def test_edgecnn_logic_buffers_are_freed_after_the_contexts(monkeypatch):
    order = []
    sess, world = _session(monkeypatch, cuda_graph=True)
    sess.run(np.ones((1, 1, 8, 8), np.float32))
    world.on_free = lambda: order.append((sess._context, sess._graph_ctx))
    sess.close()
    assert order and all(c == (None, None) for c in order)
    assert world.cuda.calls[-1] == "cudaStreamDestroy"


def test_edgecnn_logic_dla_engine_sets_runtime_dla_core(monkeypatch):
    sess, world = _session(monkeypatch, dla_core=1)
    assert world.runtime_dla_core == 1
    sess.close()


def test_edgecnn_logic_stream_goes_to_tensorrt_as_an_int(monkeypatch):
    sess, _ = _session(monkeypatch)
    sess.run(np.ones((2, 1, 8, 8), np.float32))  # the fake asserts the handle is an int
    sess.close()


def test_bool_tensors_can_be_staged():
    from edgecnn.runtime.trt_cuda import CTYPES, CudaRuntime, HostDeviceBuffer

    assert np.dtype(np.bool_) in CTYPES
    _, world = fake.fresh()
    buf = HostDeviceBuffer(CudaRuntime(world.cuda), "mask", np.bool_, (2, 3))
    buf.host[:] = True
    assert buf.host.dtype == np.bool_ and buf.host.all()
    buf.free(CudaRuntime(world.cuda))
