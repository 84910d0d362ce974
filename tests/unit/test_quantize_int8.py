"""INT8 Q/DQ export, our calibrators, the TensorRT rule checker, the cache, the accuracy
budget and FP16 -- on small ONNX graphs built in code, run in real onnxruntime."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from _onnx_graphs import save_classifier  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgecnn.backends.registry import ExportContext  # noqa: E402
from edgecnn.models.loading import LoadedModel  # noqa: E402
from edgecnn.options import ExportOptions  # noqa: E402
from edgecnn.bundle import Bundle, BundleWriter, sha256_file  # noqa: E402
from edgecnn.data.preprocess import grayscale_preprocess  # noqa: E402
from edgecnn.errors import CalibrationError  # noqa: E402
from edgecnn.manifest import Manifest  # noqa: E402
from edgecnn.backends.onnxruntime import ensure_onnx  # noqa: E402
from edgecnn.quantize.int8 import quantize_onnx  # noqa: E402
from edgecnn.runtime.ort import inference_session as ort_session  # noqa: E402
from edgecnn.runtime.ort import run_batched as run_model  # noqa: E402
from edgecnn.quantize.qdq_check import check_qdq  # noqa: E402
from edgecnn.quantize.ranges import collect_ranges, entropy_threshold  # noqa: E402

SIZE = 12
PRE = grayscale_preprocess(size=(SIZE, SIZE))
CHW = (1, SIZE, SIZE)


def small_cnn(path: Path, outliers: int = 0, seed: int = 0, batch="N") -> Path:
    """conv(1->8) relu conv(8->8,s2) relu gap flatten gemm(8->10), named nodes.

    ``outliers`` >= 1 makes channel 0 of the first conv output ~500 for every input while
    the next conv ignores it: the per-tensor INT8 scale of that activation then wipes out
    every other channel (a hypersensitive layer). ``outliers`` = 2 does the same to the
    Gemm input."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 8).astype(np.float32)
    w3 = rng.normal(0, 1.0, (10, 8)).astype(np.float32)
    b3 = np.zeros(10, np.float32)
    if outliers >= 1:
        b1[0], w2[:, 0] = 500.0, 0.0
    if outliers >= 2:
        b2[0], w3[:, 0] = 500.0, 0.0
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (b3, "b3"))]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
    ]
    save_classifier(path, nodes, inits, "small", CHW, batch)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return small_cnn(tmp_path_factory.mktemp("m") / "model.onnx")


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("c") / "calib.npy"
    np.save(p, np.random.default_rng(1).integers(0, 256, (48, SIZE, SIZE), dtype=np.uint8))
    return p


def _batches(n=64, seed=0, skew=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *CHW)).astype(np.float32)
    if skew:  # heavy right tail: a few huge values
        x = np.exp(2.0 * x).astype(np.float32)
    return [x[i:i + 16] for i in range(0, n, 16)]


def _export(out: Path, fp32: Path, **opts) -> tuple:
    """One INT8 (and optionally FP16) export into bundle ``out``, as the pipeline would."""
    logs: list[str] = []
    options = ExportOptions(**opts)
    lm = LoadedModel(module=None, name="small", input_size=CHW, preprocess=PRE,
                     labels=[str(i) for i in range(10)])
    with BundleWriter(out, Manifest(model="small", preprocess=PRE, labels=lm.labels)) as w:
        staged = w.path_for("model.onnx")
        if not staged.exists():
            staged.write_bytes(fp32.read_bytes())
        ctx = ExportContext(model=lm, options=options, profile=None, precision="int8", writer=w,
                            fp32_onnx=staged, log=logs.append)
        art = ensure_onnx(ctx, "int8")
    return art, logs


# -- calibrators ---------------------------------------------------------------------------
def test_methods_really_differ_on_skewed_data(model):
    b = _batches(n=512, skew=True)  # 73,728 values: the 99.99th percentile is below the max
    r = {m: collect_ranges(model, b, m, progress=False) for m in ("minmax", "entropy", "percentile")}
    # the graph input keeps its observed range whatever the method (range set by preprocessing)
    top = max(float(np.abs(x).max()) for x in b)
    assert all(r[m].amax["input"] == pytest.approx(top) for m in r)
    t = "r1"  # the skewed activation after conv1 + relu
    mm, en, pc = r["minmax"].amax[t], r["entropy"].amax[t], r["percentile"].amax[t]
    assert pc < mm and en < mm and en != pytest.approx(pc, rel=1e-3)
    # every calibrated tensor gets a threshold, and the methods disagree on most of them
    assert set(r["entropy"].amax) == set(r["minmax"].amax) == {"input", "r1", "f"}
    assert sum(r["entropy"].amax[k] != r["minmax"].amax[k] for k in r["minmax"].amax) >= 1


def test_entropy_threshold_clips_outliers_but_keeps_the_bulk():
    rng = np.random.default_rng(0)
    v = np.abs(rng.standard_normal(200_000))
    v[:5] = 100.0  # a handful of outliers stretch the range
    hist, _ = np.histogram(v, bins=2048, range=(0, 100.0))
    t = entropy_threshold(hist, 100.0)
    assert 2.0 < t < 20.0


def test_fixed_batch_model_calibrates_and_runs(tmp_path):
    fixed = small_cnn(tmp_path / "fixed.onnx", batch=4)
    b = _batches(n=40)  # batches of 16 and 8: re-chunked to the model's batch of 4
    r = collect_ranges(fixed, b, "percentile", progress=False)
    assert set(r.amax) == {"input", "r1", "f"} and all(v > 0 for v in r.amax.values())
    out = tmp_path / "q.onnx"
    quantize_onnx(fixed, out, r)
    assert run_model(ort_session(out), np.concatenate(b)[:10]).shape == (10, 10)


def test_unlabelled_eval_scores_agreement_with_fp32():
    from edgecnn.quantize.budget import EvalSet, score

    ref = np.eye(4, dtype=np.float32)
    got = ref.copy()
    got[0] = [0, 1, 0, 0]
    ev = EvalSet(data=np.zeros((4, *CHW), np.float32), labels=None, spec="x")
    assert score(got, ev, ref) == 75.0
    assert score(got, EvalSet(ev.data, np.array([1, 1, 2, 3]), "x"), ref) == 100.0


# -- INT8 graph + TensorRT rules -----------------------------------------------------------
def test_int8_graph_is_tensorrt_clean_and_close(model, tmp_path):
    r = collect_ranges(model, _batches(), "minmax", progress=False)
    out = tmp_path / "q.onnx"
    quantize_onnx(model, out, r)
    q = onnx.load(str(out))
    assert check_qdq(q) == []
    ops = [n.op_type for n in q.graph.node]
    assert ops.count("QuantizeLinear") == 3  # activation inputs of conv1, conv2, fc only
    # weights: int8 initializers, per-channel (8 scales for conv weights)
    inits = {i.name: numpy_helper.to_array(i) for i in q.graph.initializer}
    for n in q.graph.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            assert inits[n.input[0]].dtype == np.int8
            assert inits[n.input[1]].size == inits[n.input[0]].shape[0]
    assert inits["b1"].dtype == np.float32  # bias left in float
    x = np.concatenate(_batches())
    ref, got = run_model(ort_session(model), x), run_model(ort_session(out), x)
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert cos.min() > 0.98


def test_checker_catches_the_quantize_static_defaults(model, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter({"input": b} for b in _batches())

        def get_next(self):
            return next(self.it, None)

    bad = tmp_path / "bad.onnx"
    quantize_static(str(model), str(bad), Reader(), activation_type=QuantType.QUInt8)
    rules = {v.rule for v in check_qdq(bad)}
    assert {"zero-point", "dtype", "bias"} <= rules


def _quantized(model, tmp_path) -> "onnx.ModelProto":
    out = tmp_path / "q.onnx"
    quantize_onnx(model, out, collect_ranges(model, _batches(), "minmax", progress=False))
    return onnx.load(str(out))


def test_checker_rules_axis_scale_opset_pair(model, tmp_path):
    q = _quantized(model, tmp_path)
    wdq = next(n for n in q.graph.node if n.op_type == "DequantizeLinear" and n.input[0] == "w1_quantized")
    del wdq.attribute[:]
    wdq.attribute.append(helper.make_attribute("axis", 1))
    assert any(v.rule == "axis" for v in check_qdq(q))

    q = _quantized(model, tmp_path)
    sc = next(i for i in q.graph.initializer if i.name.endswith("_scale") and not i.dims)
    sc.CopyFrom(numpy_helper.from_array(np.array(-1.0, np.float32), sc.name))
    assert any(v.rule == "scale" for v in check_qdq(q))

    q = _quantized(model, tmp_path)
    q.opset_import[0].version = 10
    assert any(v.rule == "opset" for v in check_qdq(q))

    q = _quantized(model, tmp_path)
    qn = next(n for n in q.graph.node if n.op_type == "QuantizeLinear")
    consumer = next(n for n in q.graph.node if qn.output[0] in n.input)
    consumer.op_type = "Identity"  # a Q that feeds something other than a DQ
    del consumer.input[1:]
    assert any(v.rule == "pair" for v in check_qdq(q))


# -- export_int8 through a bundle: manifest, cache, atomicity -----------------------------
def test_export_int8_writes_artifact_report_and_cache(model, calib_npy, tmp_path):
    out = tmp_path / "bundle"
    art, logs = _export(out, model, calib=str(calib_npy), calib_samples=32, calib_method="entropy")
    b = Bundle.open(out)
    b.verify()
    a = b.find("onnxruntime", "int8")
    assert a.file == "model.int8.onnx" and a.details["method"] == "entropy"
    assert a.details["calibration"]["count"] == 32 and len(a.details["calibration"]["sha256"]) == 64
    assert a.details["quantization"]["extra_options"]["QuantizeBias"] is False
    assert a.inputs[0].name == "input" and a.inputs[0].shape == [-1, *CHW]
    assert (out / "calibration.entropy.json").is_file()
    import json

    rep = json.loads((out / "quantization_report.json").read_text())
    assert rep["size_bytes"]["int8"] < rep["size_bytes"]["fp32"] and "1" in rep["latency_ms"]["int8"]
    assert any("calibrated" in m for m in logs)


def test_cache_reused_with_same_key_and_recomputed_on_change(model, calib_npy, tmp_path):
    out = tmp_path / "bundle"
    a1, _ = _export(out, model, calib=str(calib_npy), calib_samples=16)
    old_int8 = tmp_path / "old.int8.onnx"
    os.link(out / "model.int8.onnx", old_int8)  # the previous bundle's file, as carried over
    a2, logs = _export(out, model, calib=str(calib_npy), calib_samples=16)
    assert a2.details["cache"] == "reused"
    assert any(m.startswith("reusing cached calibration calibration.minmax.json") for m in logs)
    assert a2.sha256 == a1.sha256
    a3, logs = _export(out, model, calib=str(calib_npy), calib_samples=17)  # other set
    assert a3.details["cache"] == "computed" and not any("reusing" in m for m in logs)
    a4, _ = _export(out, model, calib=str(calib_npy), calib_samples=17, calib_method="percentile")
    assert a4.details["cache"] == "computed" and (out / "calibration.percentile.json").is_file()
    # rewriting model.int8.onnx never wrote through the hard link into the old bundle's file
    assert sha256_file(old_int8) == a1.sha256
    # a damaged cache is recomputed, not trusted
    (out / "calibration.percentile.json").write_text("{not json")
    a5, _ = _export(out, model, calib=str(calib_npy), calib_samples=17, calib_method="percentile")
    assert a5.details["cache"] == "computed"


def test_export_int8_argument_errors(model, calib_npy, tmp_path):
    with pytest.raises(CalibrationError, match="needs calibration data"):
        _export(tmp_path / "b1", model)
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        _export(tmp_path / "b2", model, calib=str(calib_npy), calib_method="kl")
    with pytest.raises(CalibrationError, match="needs --eval"):
        _export(tmp_path / "b3", model, calib=str(calib_npy), max_accuracy_drop=1.0)
    assert not (tmp_path / "b1").exists()  # a failed export leaves nothing behind


# -- accuracy budget ----------------------------------------------------------------------
def _labelled_eval(model: Path, tmp: Path, n: int = 200) -> Path:
    """uint8 images labelled by the fp32 model itself (fp32 top-1 = 100%)."""
    from edgecnn.data.preprocess import normalize_uint8

    imgs = np.random.default_rng(7).integers(0, 256, (n, SIZE, SIZE), dtype=np.uint8)
    labels = run_model(ort_session(model), normalize_uint8(imgs, PRE)).argmax(1)
    p = tmp / "eval.npz"
    np.savez(p, images=imgs, labels=labels, classes=np.array([str(i) for i in range(10)]))
    return p


def test_budget_recovers_a_hypersensitive_layer(tmp_path, calib_npy):
    fp32 = small_cnn(tmp_path / "sens.onnx", outliers=1)
    ev = _labelled_eval(fp32, tmp_path)
    # precondition: plain PTQ is far over a 10 pt budget on this model
    plain, _ = _export(tmp_path / "plain", fp32, calib=str(calib_npy), calib_samples=32)
    from edgecnn.quantize.budget import load_eval, score

    e = load_eval(str(ev), PRE, CHW)
    ref = run_model(ort_session(fp32), e.data)
    plain_acc = score(run_model(ort_session(tmp_path / "plain" / "model.int8.onnx"), e.data), e, ref)
    assert 100.0 - plain_acc > 10.0

    art, logs = _export(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=32,
                        max_accuracy_drop=10.0, eval=str(ev))
    d = art.details
    assert d["excluded_layers"] and d["excluded_layers"][0] == "conv2"
    assert d["accuracy_drop"] <= 10.0 and d["accuracy"]["drop_plain"] > 10.0
    assert check_qdq(tmp_path / "b" / "model.int8.onnx") == []
    q = onnx.load(str(tmp_path / "b" / "model.int8.onnx"))
    conv2 = next(n for n in q.graph.node if n.name == "conv2")
    assert conv2.input[0] == "r1"  # reads the float activation: no Q/DQ in front of it
    assert any("layers left in float" in m for m in logs)


def test_unmeetable_budget_says_the_best_achieved(tmp_path, calib_npy):
    fp32 = small_cnn(tmp_path / "sens2.onnx", outliers=2)
    ev = _labelled_eval(fp32, tmp_path)
    with pytest.raises(CalibrationError, match=r"cannot be met: the best INT8 model drops \d"):
        _export(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=32,
                max_accuracy_drop=0.5, eval=str(ev))
    assert not (tmp_path / "b").exists()


def _varied_images(n: int = 300) -> np.ndarray:
    """Noise images of varied brightness and contrast, so that globally pooled features differ."""
    rng = np.random.default_rng(7)
    noise = rng.random((n, SIZE, SIZE))
    lo, span = rng.uniform(0, 128, (n, 1, 1)), rng.uniform(16, 127, (n, 1, 1))
    return (lo + span * noise).astype(np.uint8)


def chain_cnn(path: Path, sensitive: tuple[int, ...], depth: int = 8) -> Path:
    """conv0(1->8) then ``depth - 1`` 1x1 convs (8->8), gap, gemm. For each i in ``sensitive``,
    channel 0 of conv{i-1}'s output is ~500 and conv{i} ignores it: conv{i} is hypersensitive."""
    rng = np.random.default_rng(3)
    inits, nodes, x = [], [], "input"
    for i in range(depth):
        if i == 0:
            w = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
        else:
            w = (np.eye(8) + rng.normal(0, 0.3, (8, 8))).astype(np.float32)[:, :, None, None]
        b = rng.normal(0, 0.1, 8).astype(np.float32)
        if i + 1 in sensitive:
            b[0] = 500.0
        if i in sensitive:
            w[:, 0] = 0.0
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}",
                                   pads=[1, 1, 1, 1] if i == 0 else [0, 0, 0, 0]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    wf = rng.normal(0, 1.0, (10, 8)).astype(np.float32)
    wf[:, 0] = 0.0 if depth in sensitive else wf[:, 0]
    inits += [numpy_helper.from_array(wf, "wf"), numpy_helper.from_array(np.zeros(10, np.float32), "bf")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["p"], name="gap"),
              helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1)]
    m = save_classifier(path, nodes, inits, "chain", CHW)
    # centre and scale the classifier on the eval images, so fp32 predicts varied classes
    from edgecnn.data.preprocess import normalize_uint8

    y = run_model(ort_session(path), normalize_uint8(_varied_images(), PRE))
    mean, std = y.mean(0), y.std(0) + 1e-6
    inits[-2].CopyFrom(numpy_helper.from_array((wf / std[:, None]).astype(np.float32), "wf"))
    inits[-1].CopyFrom(numpy_helper.from_array((-mean / std).astype(np.float32), "bf"))
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits)
    onnx.save(m, str(path))
    return path


def test_budget_finds_the_fewest_float_layers_by_doubling_then_bisecting(tmp_path, calib_npy):
    from edgecnn.quantize.budget import enforce_budget, load_eval

    from edgecnn.data.preprocess import normalize_uint8

    fp32 = chain_cnn(tmp_path / "chain.onnx", sensitive=(2, 4, 6))
    imgs = _varied_images()
    labels = run_model(ort_session(fp32), normalize_uint8(imgs, PRE)).argmax(1)
    np.savez(tmp_path / "eval.npz", images=imgs, labels=labels,
             classes=np.array([str(i) for i in range(10)]))
    ev = load_eval(str(tmp_path / "eval.npz"), PRE, CHW)
    ranges = collect_ranges(fp32, [ev.data[i:i + 50] for i in range(0, 300, 50)], "minmax")
    int8 = tmp_path / "chain.int8.onnx"
    quantize_onnx(fp32, int8, ranges)
    logs: list[str] = []
    res = enforce_budget(fp32, int8, ranges, ev, 25.0, log=logs.append, progress=False)
    # plain 61 pt; float conv2+conv4: 62 pt; +conv6+fc: 13 pt; +conv6: 22 pt (int8 noise remains)
    assert res.drop_plain > 25.0 >= res.drop
    assert sorted(res.excluded) == ["conv2", "conv4", "conv6"]  # exactly the three, no more
    assert [s["excluded"] for s in res.steps] == [1, 2, 4, 3]
    assert not res.steps[0]["complete"] and res.steps[0]["images"] < 300  # stopped early
    assert res.steps[-1]["complete"]
    assert check_qdq(int8) == []
    q = {n.name: n for n in onnx.load(str(int8)).graph.node}
    for name in res.excluded:  # the float layers read float activations
        assert q[name].input[0].startswith("r")


def test_score_until_stops_only_when_the_verdict_is_certain(tmp_path):
    from edgecnn.quantize.budget import EvalSet, score_until

    fp32 = small_cnn(tmp_path / "m.onnx")
    data = np.concatenate(_batches(200))
    ref = run_model(ort_session(fp32), data)
    wrong = EvalSet(data=data, labels=(ref.argmax(1) + 1) % 10, spec="wrong")
    sess = ort_session(fp32)
    full = score_until(sess, wrong, ref, fp32=100.0, budget=None, chunk=16)
    assert full.complete and full.score == 0.0 and full.images == 200
    early = score_until(sess, wrong, ref, fp32=100.0, budget=10.0, chunk=16)
    # after 16 wrong the best possible is 92 % (drop 8 <= 10); after 32 it is 84 %: certain
    assert (early.complete, early.images) == (False, 32) and early.drop == pytest.approx(16.0)
    right = EvalSet(data=data, labels=ref.argmax(1), spec="right")
    ok = score_until(sess, right, ref, fp32=100.0, budget=0.0, chunk=16)
    assert ok.complete and ok.score == 100.0 and ok.meets(0.0)


# -- FP16 ---------------------------------------------------------------------------------
def test_fp16_keeps_float32_io_and_runs(model, tmp_path):
    from edgecnn.quantize.fp16 import convert_fp16

    out = tmp_path / "m16.onnx"
    kept = convert_fp16(model, out)
    m = onnx.load(str(out))
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert {i.data_type for i in m.graph.initializer if i.name.startswith("w")} == {TensorProto.FLOAT16}
    assert "GlobalAveragePool" in kept
    x = np.concatenate(_batches())
    ref, got = run_model(ort_session(model), x), run_model(ort_session(out), x)
    assert np.abs(ref - got).max() < 2e-2 * max(1.0, np.abs(ref).max())
