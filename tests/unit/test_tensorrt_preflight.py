"""CPU preflight against onnx-tensorrt's operator table: planted faults are caught, the zoo passes."""

import numpy as np
import onnx
import pytest
from _tensorrt_lib import export_onnx, fp16, qdq_int8, tiny_cnn
from onnx import TensorProto, helper, numpy_helper

from edgecnn.runtime.trt_engine_info import TrtVersion
from edgecnn.tensorrt.preflight import op_table, opset_range, preflight

VERSIONS = ("10.3", "11.0")


def _graph(nodes, inits=(), opset=17, in_shape=("N", 1, 8, 8), in_type=TensorProto.FLOAT,
           out="y", out_type=TensorProto.FLOAT, domains=()):
    g = helper.make_graph(list(nodes), "g",
                          [helper.make_tensor_value_info("x", in_type, list(in_shape))],
                          [helper.make_tensor_value_info(out, out_type, None)], list(inits))
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(g, opset_imports=ops)


def _codes(report):
    return {(i.severity, i.code) for i in report.issues}


def test_table_has_its_source_and_version_ranges():
    t = op_table()
    assert "onnx-tensorrt" in t["source"]["table"] and "10.15" in t["source"]["table"]
    assert opset_range(TrtVersion(10, 3)) == (9, 20, "10.0")
    assert opset_range(TrtVersion(10, 15)) == (9, 24, "10.15")
    assert opset_range(TrtVersion(11, 2)) == (9, 24, "11.0")  # 11.5 added opset 25
    assert opset_range(TrtVersion(11, 4)) == (9, 24, "11.0")
    assert opset_range(TrtVersion(11, 5)) == (9, 25, "11.5")
    for key, row in t["versions"].items():
        assert row.get("source"), f"opset row {key} has no source"
    for op in ("Conv", "Gemm", "MaxPool", "QuantizeLinear", "DequantizeLinear", "Softmax", "Erf"):
        assert op in t["ops"]


@pytest.mark.parametrize("version", VERSIONS)
def test_tiny_exported_cnn_passes(tmp_path, version):
    path = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx")
    r = preflight(path, version, "fp32", (1, 4, 32), (1, 8, 8))
    assert r.ok, r.summary()
    assert r.ops.get("Conv") == 2


def test_custom_domain_op_is_caught():
    m = _graph([helper.make_node("MyRelu", ["x"], ["y"], domain="com.acme", name="plugin0")],
               domains=("com.acme",))
    r = preflight(m, "10.3")
    assert not r.ok and ("error", "custom-domain") in _codes(r)
    assert "plugin0" in str(r.errors[0]) and "com.acme" in str(r.errors[0])


@pytest.mark.parametrize("op", ["Unique", "MaxUnpool", "NotAnOnnxOp"])
def test_op_missing_or_unsupported_is_caught(op):
    m = _graph([helper.make_node(op, ["x"], ["y"], name="n0")])
    r = preflight(m, "11.0")
    assert [i.code for i in r.errors] == ["unsupported-op"] and r.errors[0].op == op


def test_op_newer_than_version():
    m = _graph([helper.make_node("RMSNormalization", ["x", "s"], ["y"], name="n")],
               [numpy_helper.from_array(np.ones(8, np.float32), "s")], opset=23)
    assert any("first listed for TensorRT 10.15" in i.message for i in preflight(m, "10.3").errors)


def _qdq_model(zp_dtype=np.int8, zp_value=0):
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zp = numpy_helper.from_array(np.array(zp_value, zp_dtype), "zp")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="dq0"),
             helper.make_node("Relu", ["dq"], ["y"], name="relu")]
    return _graph(nodes, [scale, zp])


def test_signed_symmetric_qdq_passes():
    r = preflight(_qdq_model(), "10.3", "int8", qdq_rules=False)
    assert r.ok, r.summary()


def test_uint8_qdq_is_caught():
    r = preflight(_qdq_model(np.uint8, 128), "10.3", "int8", qdq_rules=False)
    msgs = " ".join(str(i) for i in r.errors)
    assert "UINT8" in msgs and "not 0" in msgs
    assert {i.node for i in r.errors} >= {"q0", "dq0"}


def test_opset_outside_parser_range():
    m = _graph([helper.make_node("Relu", ["x"], ["y"])], opset=22)
    assert ("error", "opset") in _codes(preflight(m, "10.3"))
    assert preflight(m, "11.0").ok


def test_dims_dynamic_hw_and_fixed_batch():
    m = _graph([helper.make_node("Relu", ["x"], ["y"])], in_shape=("N", 1, "H", 8))
    assert any("dim 2 is dynamic" in i.message for i in preflight(m, "10.3").errors)
    fixed = _graph([helper.make_node("Relu", ["x"], ["y"])], in_shape=(1, 1, 8, 8))
    assert any("fixed batch of 1" in i.message for i in preflight(fixed, "10.3", batch=(1, 8, 32)).errors)
    assert preflight(fixed, "10.3", batch=(1, 1, 1)).ok
    assert any("plan expects" in i.message
               for i in preflight(fixed, "10.3", input_size=(3, 8, 8)).errors)


def test_int64_weights():
    w = numpy_helper.from_array(np.ones((4, 1, 3, 3), np.int64), "w")
    m = _graph([helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT64),
                helper.make_node("Mul", ["xi", "w"], ["y"], name="mul")], [w], out_type=TensorProto.INT64)
    r = preflight(m, "10.3")
    # TensorRT 10 runs INT64 natively in elementwise ops: a warning, not an error
    assert any(i.code == "int64-weights" and i.severity == "warning" for i in r.issues) and r.ok
    shape = numpy_helper.from_array(np.array([-1, 64], np.int64), "shape")
    ok = _graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], [shape])
    assert not any(i.code == "int64-weights" for i in preflight(ok, "10.3").issues)


def test_attribute_restrictions():
    pool = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], dilations=[2, 2], name="p")
    assert any("dilations" in i.message for i in preflight(_graph([pool]), "10.3").errors)
    resize = helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="cubic", name="r")
    sc = numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc")
    assert any("cubic" in i.message for i in preflight(_graph([resize], [sc]), "10.3").errors)


def test_dtype_outside_the_table():
    m = _graph([helper.make_node("Conv", ["xd", "w"], ["y"], name="c"),
                helper.make_node("Cast", ["x"], ["xd"], to=TensorProto.INT32)],
               [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.int32), "w")])
    # nodes out of order on purpose? no: keep topological order
    m.graph.node.reverse()
    assert any(i.code == "dtype" and "INT32" in i.message for i in preflight(m, "10.3").errors)


def test_precision_must_live_in_the_graph(tmp_path):
    path = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx")
    assert any(i.code == "precision" for i in preflight(path, "10.3", "int8").errors)
    assert any(i.code == "precision" for i in preflight(path, "10.3", "fp16").errors)


@pytest.mark.parametrize("version", VERSIONS)
def test_real_int8_and_fp16_graphs_pass(tmp_path, version):
    src = export_onnx(tiny_cnn(), (1, 8, 8), tmp_path / "m.onnx")
    q = qdq_int8(src, tmp_path / "m.int8.onnx", (1, 8, 8))
    r = preflight(q, version, "int8", (1, 1, 8), (1, 8, 8))
    assert r.ok, r.summary()
    assert r.ops.get("QuantizeLinear", 0) > 0
    h = fp16(src, tmp_path / "m.fp16.onnx")
    r = preflight(h, version, "fp16", (1, 1, 8), (1, 8, 8))
    assert r.ok, r.summary()


# -- defect 9: per-version rows, Swish, strongly typed Q/DQ -------------------------------------

def test_opset_bound_per_minor_version():
    m = _graph([helper.make_node("Relu", ["x"], ["y"])], opset=25)
    assert ("error", "opset") in _codes(preflight(m, "11.4"))
    assert ("error", "opset") not in _codes(preflight(m, "11.5"))
    m21 = _graph([helper.make_node("Relu", ["x"], ["y"])], opset=21)
    assert ("error", "opset") in _codes(preflight(m21, "10.3"))


@pytest.mark.parametrize("op, first", [("HannWindow", "10.4"), ("STFT", "10.5")])
def test_ops_first_supported_after_10_3_are_refused_for_10_3(op, first):
    assert op_table()["ops"][op]["min_trt"] == first and op_table()["ops"][op]["min_trt_source"]
    m = _graph([helper.make_node(op, ["x"], ["y"], name="n0")])
    assert any(i.code == "unsupported-op" and first in i.message for i in preflight(m, "10.3").errors)
    assert not [i for i in preflight(m, "10.15").errors if i.code == "unsupported-op"]


def test_10_3_uses_the_older_type_rows():
    """Pow on INT32 is in the 10.15 table but not in 10.1-GA's (the closest table before 10.3)."""
    m = _graph([helper.make_node("Cast", ["x"], ["xi"], to=TensorProto.INT32),
                helper.make_node("Pow", ["xi", "xi"], ["y"], name="pow")], out_type=TensorProto.INT32)
    assert ("error", "dtype") in _codes(preflight(m, "10.3"))
    assert ("error", "dtype") not in _codes(preflight(m, "11.0"))


def test_swish_from_11_0():
    m = _graph([helper.make_node("Swish", ["x"], ["y"], name="sw")], opset=24)
    assert any(i.code == "unsupported-op" and i.op == "Swish" for i in preflight(m, "10.15").errors)
    assert not [i for i in preflight(m, "11.0").errors if i.op == "Swish"]


def _q(x_type, scale_dtype, scale_shape=(), weight=False):
    scale = numpy_helper.from_array(np.full(scale_shape, 0.1, scale_dtype), "s")
    zp = numpy_helper.from_array(np.zeros(scale_shape, np.int8), "zp")
    inits = [scale, zp]
    src = "x"
    nodes = []
    if x_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xc"], to=x_type))
        src = "xc"
    if weight:
        inits.append(numpy_helper.from_array(np.ones((4, 1, 3, 3), np.float32), "w"))
        src = "w"
    nodes += [helper.make_node("QuantizeLinear", [src, "s", "zp"], ["q"], name="q0", axis=0),
              helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dq0", axis=0)]
    return _graph(nodes, inits, opset=21)


def test_quantize_input_type_must_equal_scale_type():
    r = preflight(_q(TensorProto.FLOAT16, np.float32), "10.3", qdq_rules=False)
    assert any(i.code == "qdq" and "FP16" in i.message and "FP32" in i.message for i in r.errors)
    assert not [i for i in preflight(_q(TensorProto.FLOAT, np.float32), "10.3", qdq_rules=False).errors
                if i.code == "qdq"]


def test_per_channel_activation_scale_is_flagged_not_weight():
    r = preflight(_q(TensorProto.FLOAT, np.float32, (1,)), "10.3", qdq_rules=False)
    assert not [i for i in r.errors if "per-channel" in i.message]  # one element: per tensor
    m = _q(TensorProto.FLOAT, np.float32, (4,), weight=True)
    assert not [i for i in preflight(m, "10.3", qdq_rules=False).errors if "per-channel" in i.message]
    act2 = _graph([helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="qa", axis=1),
                   helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="dqa", axis=1)],
                  [numpy_helper.from_array(np.full((2,), 0.1, np.float32), "s"),
                   numpy_helper.from_array(np.zeros((2,), np.int8), "zp")], opset=21,
                  in_shape=("N", 2, 8, 8))
    assert any("per-channel" in i.message and i.node == "qa"
               for i in preflight(act2, "10.3", qdq_rules=False).errors)


def test_dequantize_output_follows_scale_type():
    """A DQ with an FP32 scale feeding an Add with an FP16 input: mixed types, refused."""
    nodes = [helper.make_node("Cast", ["x"], ["xh"], to=TensorProto.FLOAT16),
             helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="dq0"),
             helper.make_node("Add", ["dq", "xh"], ["y"], name="add0")]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "zp")]
    r = preflight(_graph(nodes, inits, opset=21, out_type=TensorProto.FLOAT16), "11.0", qdq_rules=False)
    assert any(i.code == "qdq" and i.node == "dq0" and "add0" in i.message for i in r.errors), r.summary()
