"""Prepare through the real export pipeline, the CLI messages, and the zoo preflight matrix."""

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from _tensorrt_lib import export_onnx, fp16, qdq_int8

from edgecnn.backends.registry import get_backend

from edgecnn.options import BatchProfile, ExportOptions
from edgecnn.cli.main import cli
from edgecnn.errors import BackendUnavailableError, ProfileError
from edgecnn.tensorrt.plan import PREPARED_KEY, read_plans

HAS_TRT = importlib.util.find_spec("tensorrt") is not None
FMNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def test_registered_with_aliases():
    b = get_backend("trt")
    assert b is get_backend("tensorrt") and b.name == "tensorrt"
    assert b.precisions == ("fp32", "fp16", "int8")


def test_check_refuses_bad_options():
    from edgecnn.targets import resolve_target

    b = get_backend("tensorrt")
    with pytest.raises(ProfileError, match="not a version"):
        b.check(ExportOptions(target="tensorrt", trt_version="ten"), resolve_target("tensorrt"))
    with pytest.raises(BackendUnavailableError, match="too old"):
        b.check(ExportOptions(target="tensorrt", trt_version="8.6"), resolve_target("tensorrt"))


def test_preflight_versions():
    from edgecnn.tensorrt.preflight import preflight_versions

    assert preflight_versions("10.3", "10.3") == ["10.3"]
    assert preflight_versions("10.0", "11.99") == ["10.0", "11.0"]
    assert preflight_versions("10.13", "11.99") == ["10.13", "11.0"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """lenet5 prepared for fp32 and fp16 for the Orin Nano profile by the real pipeline."""
    from edgecnn.pipeline import export

    out = tmp_path_factory.mktemp("trt") / "lenet5"
    logs = []
    for prec in ("fp32", "fp16"):
        export("lenet5", ExportOptions(target="jetson-orin-nano", precision=prec, out=out,
                                       parity_samples=2), log=logs.append)
    return out, logs


def test_prepare_writes_plan_trt_onnx_and_manifest_record(prepared):
    from edgecnn.bundle import Bundle, sha256_file

    out, logs = prepared
    plans = read_plans(out / "build_plan.json")
    assert sorted(plans) == ["fp16", "fp32"]
    p = plans["fp16"]
    assert (p.batch_min, p.batch_opt, p.batch_max) == (1, 1, 8)  # from jetson-orin-nano.toml
    assert (p.trt_version_min, p.trt_version_max, p.workspace_mb) == ("10.3", "10.3", 1024)
    assert p.source_onnx == "model.fp16.onnx" and p.input_chw == [1, 32, 32]
    assert sha256_file(out / p.trt_onnx) == p.source_onnx_sha256
    record = Bundle.open(out).manifest.source[PREPARED_KEY]
    assert record["build_plan_sha256"] == sha256_file(out / "build_plan.json")
    assert set(record["precisions"]) == {"fp16", "fp32"}  # survives the second export
    if not HAS_TRT:
        assert any("fp16 engine is built on the device by 'edgecnn build'" in m for m in logs)


@pytest.mark.skipif(HAS_TRT, reason="with TensorRT installed, prepare builds the engine right away")
def test_engine_is_not_a_manifest_artifact_until_built(prepared):
    from edgecnn.bundle import Bundle

    out, _ = prepared
    files = [a.file for a in Bundle.open(out).manifest.artifacts]
    assert "model.fp16.trt.onnx" not in files and not any(f.endswith(".engine") for f in files)


def test_cli_check_passes_on_prepared_bundle(prepared):
    out, _ = prepared
    res = CliRunner().invoke(cli, ["check", str(out), "--target", "tensorrt", "--json"])
    assert res.exit_code == 0, res.output
    reports = json.loads(res.output)
    assert {(r["trt_version"], r["precision"]) for r in reports} == {("10.3", "fp16"), ("10.3", "fp32")}
    res = CliRunner().invoke(cli, ["check", str(out), "--target", "trt", "--trt-version", "11.0",
                                   "--precision", "fp16"])
    assert res.exit_code == 0 and "TensorRT 11.0 preflight (fp16" in res.output


def test_cli_check_without_target_has_nothing_without_int8(prepared):
    out, _ = prepared
    res = CliRunner().invoke(cli, ["check", str(out)])
    assert res.exit_code == 0 and "nothing to check" in res.output


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed here")
def test_cli_build_without_tensorrt_is_one_line(prepared):
    out, _ = prepared
    res = CliRunner().invoke(cli, ["build", str(out), "--precision", "fp16"])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "pip install 'edgecnn[tensorrt]'" in lines[0] and "device" in lines[0]


def test_cli_check_fails_on_planted_uint8_qdq(tmp_path):
    """A bundle whose int8 ONNX uses UINT8 Q/DQ: both check modes fail with the node named."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper
    import onnx

    from edgecnn.bundle import BundleWriter
    from _tensorrt_lib import io_specs, make_manifest

    nodes = [helper.make_node("QuantizeLinear", ["input", "s", "zp"], ["q"], name="q_in"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="dq_in"),
             helper.make_node("Flatten", ["dq"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["logits"], transB=1)]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(128, np.uint8), "zp"),
             numpy_helper.from_array(np.ones((4, 64), np.float32), "w")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                     ["batch", 1, 8, 8])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])], inits)
    inputs, outputs = io_specs((1, 8, 8), 4)
    with BundleWriter(tmp_path / "b", make_manifest()) as w:
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
                  w.path_for("model.int8.onnx"))
        w.add_artifact("model.int8.onnx", "onnxruntime", "int8", inputs, outputs)
    res = CliRunner().invoke(cli, ["check", str(tmp_path / "b"), "--target", "tensorrt", "--precision", "int8"])
    assert res.exit_code == 1 and "UINT8" in res.output and "q_in" in res.output
    res = CliRunner().invoke(cli, ["check", str(tmp_path / "b")])
    assert res.exit_code == 1 and "UINT8" in res.output


@pytest.mark.data
@pytest.mark.skipif(not FMNIST.is_file(), reason="Fashion-MNIST files are not installed")
def test_prepare_int8_through_the_quantize_helper(tmp_path):
    from edgecnn.pipeline import export

    out = tmp_path / "b"
    logs = []
    export("lenet5", ExportOptions(target="tensorrt", precision="int8", out=out, calib="fashion-mnist:train",
                                   calib_samples=32, parity_samples=2, batch=BatchProfile(1, 4, 16)),
           log=logs.append)
    plan = read_plans(out / "build_plan.json")["int8"]
    assert plan.constant_folding.startswith("skipped: Q/DQ") and (plan.batch_opt, plan.batch_max) == (4, 16)
    assert (plan.trt_version_min, plan.trt_version_max) == ("10.0", "11.99")
    res = CliRunner().invoke(cli, ["check", str(out)])
    assert res.exit_code == 0 and "int8 Q/DQ check: 0 error(s)" in res.output


# -- zoo matrix: every model at its test size, every precision, TensorRT 10.3 and 11.0 ----------

def _zoo(fast: bool):
    from edgecnn.models import list_models

    names = [m.name for m in list_models()]
    small = [n for n in ("lenet5", "resnet8") if n in names]
    return small if fast else [n for n in names if n not in small]


def _prepare_zoo_onnx(name, tmp_path):
    from edgecnn.models import create_model, get_model_info

    c, h, w = get_model_info(name).test_size
    module = create_model(name, in_chans=c, img_size=h).eval()
    src = export_onnx(module, (c, h, w), tmp_path / "model.onnx")
    return (c, h, w), {"fp32": src, "fp16": fp16(src, tmp_path / "model.fp16.onnx"),
                       "int8": qdq_int8(src, tmp_path / "model.int8.onnx", (c, h, w), n=2)}


def _zoo_case(name, tmp_path):
    from edgecnn.tensorrt.plan import make_trt_onnx
    from edgecnn.tensorrt.preflight import preflight

    chw, files = _prepare_zoo_onnx(name, tmp_path)
    for prec, src in files.items():
        dst = tmp_path / f"model.{prec}.trt.onnx"
        make_trt_onnx(src, dst, chw)
        for version in ("10.3", "11.0"):
            r = preflight(dst, version, prec, (1, 8, 32), chw)
            assert r.ok, f"{name} {prec}: {r.summary()}"


@pytest.mark.parametrize("name", _zoo(fast=True))
def test_zoo_small_models_pass_preflight(name, tmp_path):
    _zoo_case(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", _zoo(fast=False))
def test_zoo_models_pass_preflight(name, tmp_path):
    _zoo_case(name, tmp_path)


@pytest.mark.parametrize("batch, expected", [(None, (1, 1, 8)), (BatchProfile(), (1, 1, 32)),
                                             (BatchProfile(2, 4, 16), (2, 4, 16))])
def test_batch_profile_from_device_profile_unless_given(batch, expected):
    from edgecnn.tensorrt.plan import make_plan
    from edgecnn.targets import resolve_target

    plan = make_plan(ExportOptions(target="jetson-orin-nano", batch=batch),
                     resolve_target("jetson-orin-nano"), "fp32", "input", (1, 32, 32),
                     "model.onnx", "0" * 64, "none")
    assert (plan.batch_min, plan.batch_opt, plan.batch_max) == expected
