"""The build plan, the TensorRT-ready ONNX, and the build decisions (no TensorRT needed)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _tensorrt_lib import export_onnx, qdq_int8, tiny_cnn

from edgecnn.errors import BackendUnavailableError, BundleError, ChecksumError
from edgecnn.tensorrt.builder import (ParserIssue, format_parser_errors, resolve_build,
                                      verify_prepared)
from edgecnn.tensorrt.plan import (BUILD_PLAN, BuildPlan, make_trt_onnx, plans_json, read_plans,
                                   trt_onnx_name)


def _plan(precision="fp16", **kw):
    base = dict(precision=precision, trt_onnx=f"model.{precision}.trt.onnx", source_onnx="model.onnx",
                source_onnx_sha256="0" * 64, input_name="input", input_chw=[1, 28, 28], batch_min=1,
                batch_opt=8, batch_max=32, workspace_mb=1024, builder_optimization_level=3,
                trt_version_min="10.3", trt_version_max="11.99",
                timing_cache="trt_timing.{trt}.sm{sm}.cache")
    base.update(kw)
    return BuildPlan(**base)


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def test_trt_onnx_keeps_batch_dynamic_and_chw_static(tmp_path):
    src = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx")
    name, note, fixed = make_trt_onnx(src, tmp_path / "m.trt.onnx", (1, 8, 8))
    g = onnx.load(str(tmp_path / "m.trt.onnx")).graph
    dims = g.input[0].type.tensor_type.shape.dim
    assert name == g.input[0].name and dims[0].dim_param == "batch" and fixed is None
    assert [d.dim_value for d in dims[1:]] == [1, 8, 8]
    assert "onnxscript" in note or "polygraphy" in note
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "m.trt.onnx", x), _run(src, x), rtol=1e-5, atol=1e-5)


def test_fixed_batch_export_stays_fixed(tmp_path):
    """Relabelling a fixed-batch graph's input would break its Reshape constants: it stays fixed."""
    src = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx", dynamic_batch=False)
    _, _, fixed = make_trt_onnx(src, tmp_path / "m.trt.onnx", (1, 8, 8))
    assert fixed == 2
    dims = onnx.load(str(tmp_path / "m.trt.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2
    x = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "m.trt.onnx", x), _run(src, x), rtol=1e-5, atol=1e-5)


def test_qdq_graph_is_not_folded(tmp_path):
    src = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx")
    q = qdq_int8(src, tmp_path / "m.int8.onnx", (1, 8, 8))
    _, note, _ = make_trt_onnx(q, tmp_path / "m.int8.trt.onnx", (1, 8, 8))
    assert note.startswith("skipped: Q/DQ")
    before = [n.op_type for n in onnx.load(str(q)).graph.node]
    after = [n.op_type for n in onnx.load(str(tmp_path / "m.int8.trt.onnx")).graph.node]
    assert before == after and after.count("DequantizeLinear") > 0


def test_plan_roundtrip_and_file(tmp_path):
    plans = {"fp16": _plan("fp16"), "int8": _plan("int8", dla_core=None)}
    (tmp_path / "build_plan.json").write_text(plans_json(plans))
    assert read_plans(tmp_path / "build_plan.json") == plans
    assert read_plans(tmp_path / "nothing.json") == {}
    (tmp_path / "bad.json").write_text('{"format": "other"}')
    with pytest.raises(BundleError, match="not an edgecnn build plan"):
        read_plans(tmp_path / "bad.json")
    with pytest.raises(BundleError):
        BuildPlan.from_dict({"precision": "fp16", "surprise": 1})


def test_profile_shapes_and_cache_name():
    p = _plan()
    assert p.profile_shapes() == ([1, 1, 28, 28], [8, 1, 28, 28], [32, 1, 28, 28])
    assert p.timing_cache_file("10.3", "8.7", "Jetson AGX Orin") == "trt_timing.10.3.sm87.jetson-agx-orin.cache"


def test_timing_cache_is_keyed_by_device_not_only_sm():
    """Defect 5: an AGX Orin and an Orin Nano are both sm 8.7; their caches must not collide,
    including for plans written before the key had {gpu}."""
    from edgecnn.tensorrt.builder import cache_device

    p = _plan()
    agx = p.timing_cache_file("10.3", "8.7", cache_device("Orin", "Jetson AGX Orin"))
    nano = p.timing_cache_file("10.3", "8.7", cache_device("Orin", "Jetson Orin Nano"))
    assert agx != nano and agx.startswith("trt_timing.10.3.sm87.") and agx.endswith(".cache")
    p.timing_cache = "trt_timing.{trt}.sm{sm}.cache"  # an older plan
    assert p.timing_cache_file("10.3", "8.7", "NVIDIA GeForce RTX 4090") == \
        "trt_timing.10.3.sm87.nvidia-geforce-rtx-4090.cache"


def test_resolve_build_picks_the_plan():
    plans = {"fp16": _plan("fp16"), "int8": _plan("int8")}
    with pytest.raises(BundleError, match="choose one with --precision"):
        resolve_build(plans, None, None, "10.3.0.30", None, 0)
    plan, strategy, warnings = resolve_build(plans, "int8", None, "10.3.0.30", None, 0)
    assert plan.precision == "int8" and strategy.network_flags == ("STRONGLY_TYPED",) and warnings == []
    assert resolve_build({"fp16": _plan()}, None, None, "11.1", None, 0)[1].network_flags == ()
    with pytest.raises(BundleError, match="not prepared for fp32"):
        resolve_build(plans, "fp32", None, "10.3", None, 0)
    with pytest.raises(BundleError, match="no build_plan.json"):
        resolve_build({}, None, None, "10.3", None, 0)


def test_resolve_build_checks_the_tensorrt_version():
    with pytest.raises(BackendUnavailableError, match="JetPack 6.1"):
        resolve_build({"fp16": _plan()}, None, None, "8.6.2", "Jetson Orin Nano", 0)
    thor_plan = _plan(trt_version_min="10.13", trt_version_max="11.99")
    with pytest.raises(BackendUnavailableError, match="10.13 or later"):
        resolve_build({"fp16": thor_plan}, None, None, "10.3.0.30", None, 0)
    _, _, warnings = resolve_build({"fp16": _plan(trt_version_max="10.3")}, None, None, "10.8", None, 0)
    assert warnings and "newer" in warnings[0]


@pytest.mark.parametrize("trt,module,cores,core,prec,needle", [
    ("10.3", None, 0, 0, "fp16", "not a Jetson"),
    ("10.3", "Jetson Orin Nano", 0, 0, "fp16", "has no DLA"),
    ("10.13", "Jetson AGX Thor", 0, 0, "fp16", "has no DLA"),
    ("10.3", "Jetson AGX Orin", 2, 2, "fp16", "0..1"),
    ("11.0", "Jetson AGX Orin", 2, 0, "fp16", "cannot target the DLA"),
    ("11.4.0.106", "Jetson AGX Orin", 2, 0, "fp16", "11.4.1"),
    ("10.3", "Jetson AGX Orin", 2, 0, "fp32", "fp16 and int8 layers only"),
])
def test_dla_refusals(trt, module, cores, core, prec, needle):
    with pytest.raises(BackendUnavailableError, match=needle):
        resolve_build({prec: _plan(prec)}, prec, core, trt, module, cores)


@pytest.mark.parametrize("trt", ["10.3.0.30", "11.4.1", "11.5.0"])
def test_dla_on_agx_orin_is_allowed(trt):
    """Defect 6: TensorRT 11.4.1 (JetPack 7.2.2+) supports the DLA on AGX Orin again."""
    plan, strategy, _ = resolve_build({"int8": _plan("int8")}, "int8", 1, trt, "Jetson AGX Orin", 2)
    assert strategy.dla_supported and plan.precision == "int8"


def test_parser_errors_name_node_op_and_inputs():
    text = format_parser_errors("model.fp16.trt.onnx", "10.3", [
        ParserIssue(4, "/layer1/Unique", "Unique", "No importer registered for op: Unique", ["x", "axis"]),
        ParserIssue(-1, "", "", "Unsupported model IR version", [])])
    assert "node 4 '/layer1/Unique' (Unique) inputs [x, axis]: No importer registered" in text
    assert "graph: Unsupported model IR version" in text and "edgecnn check" in text


def test_verify_prepared(tmp_path):
    from edgecnn.bundle import sha256_file

    (tmp_path / "model.fp16.trt.onnx").write_bytes(b"onnx bytes")
    plan = _plan(source_onnx_sha256=sha256_file(tmp_path / "model.fp16.trt.onnx"))
    (tmp_path / "build_plan.json").write_text(plans_json({"fp16": plan}))
    record = {"build_plan_sha256": sha256_file(tmp_path / "build_plan.json"),
              "precisions": {"fp16": {"trt_onnx_sha256": plan.source_onnx_sha256}}}
    verify_prepared(tmp_path, record, plan)
    verify_prepared(tmp_path, None, plan)
    (tmp_path / "model.fp16.trt.onnx").write_bytes(b"changed in transfer")
    with pytest.raises(ChecksumError, match="model.fp16.trt.onnx"):
        verify_prepared(tmp_path, record, plan)
    (tmp_path / "build_plan.json").write_text(plans_json({"fp16": plan}) + " ")
    with pytest.raises(ChecksumError, match="build_plan.json"):
        verify_prepared(tmp_path, record, plan)


def test_prepared_file_names_agree_with_the_catalogue():
    from edgecnn import catalog
    from edgecnn.options import ExportOptions
    from edgecnn.tensorrt.plan import make_plan

    entry = catalog.BACKENDS["tensorrt"]
    assert set(entry.prepared_files) == {BUILD_PLAN, *(trt_onnx_name(p) for p in entry.precisions)}
    plan = make_plan(ExportOptions(target="tensorrt"), None, "int8", "input", (1, 8, 8),
                     catalog.artifact_file("onnxruntime", "int8"), "0" * 64, "none")
    assert plan.trt_onnx in entry.prepared_files


def test_jetpack7_agx_orin_profile_builds_dla_from_11_4_1():
    from edgecnn.targets import resolve_target

    prof = resolve_target("jetson-agx-orin-jp7")
    assert (prof.trt_version_min, prof.dla_cores, prof.compute_capability) == ("11.4", 2, "8.7")
    plan = _plan("int8", trt_version_min=prof.trt_version_min, trt_version_max=prof.trt_version_max)
    _, strategy, _ = resolve_build({"int8": plan}, "int8", 0, "11.4.1.2", "Jetson AGX Orin", 2)
    assert strategy.dla_supported
    with pytest.raises(BackendUnavailableError, match="11.4.1"):
        resolve_build({"int8": plan}, "int8", 0, "11.4.0.106", "Jetson AGX Orin", 2)
