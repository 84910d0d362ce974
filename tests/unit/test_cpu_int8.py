"""The CPU-shaped INT8 ONNX graph beside the TensorRT-shaped one: one calibration, two graphs,
artifact identity (catalogue variant, details["shaped_for"], Artifact.key, Manifest.find,
runtime.load, bench targets), old bundles, the parity gate and the accuracy budget on the CPU
graph. Small graphs built in code, run in real onnxruntime; no mocks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from _onnx_graphs import save_classifier  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgecnn import catalog  # noqa: E402
from edgecnn.backends.onnxruntime import OnnxRuntimeBackend, ensure_onnx  # noqa: E402
from edgecnn.backends.registry import ExportContext  # noqa: E402
from edgecnn.bundle import Bundle, BundleWriter  # noqa: E402
from edgecnn.data.preprocess import grayscale_preprocess, normalize_uint8  # noqa: E402
from edgecnn.errors import BundleError, ParityError, UnknownTargetError  # noqa: E402
from edgecnn.manifest import SCHEMA_VERSION, Manifest, TensorSpec  # noqa: E402
from edgecnn.models.loading import LoadedModel  # noqa: E402
from edgecnn.options import ExportOptions  # noqa: E402
from edgecnn.platform_info import cpu_flags, int16_saturation_risk  # noqa: E402
from edgecnn.quantize.int8 import CPU_QDQ, TENSORRT_QDQ, quantize_onnx  # noqa: E402
from edgecnn.quantize.ranges import collect_ranges, scheme_tensors  # noqa: E402
from edgecnn.runtime.ort import inference_session, run_batched  # noqa: E402

SIZE = 12
PRE = grayscale_preprocess(size=(SIZE, SIZE))
CHW = (1, SIZE, SIZE)
LABELS = [str(i) for i in range(10)]


def res_cnn(path: Path, outliers: bool = False, seed: int = 0, batch="N") -> Path:
    """conv1 relu -> conv2 relu -> add(skip) -> maxpool -> gap -> flatten -> gemm: every op
    type the CPU graph quantizes beyond Conv/Gemm (Add, Relu, MaxPool, Flatten). ``outliers``:
    channel 0 of conv1's output is ~500 for every input and nothing after reads it, so one
    per-tensor activation scale wipes out the other channels (a hypersensitive layer)."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.3, (8, 8, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 8).astype(np.float32)
    w3 = rng.normal(0, 1.0, (10, 8)).astype(np.float32)
    b3 = np.zeros(10, np.float32)
    if outliers:
        b1[0], w2[:, 0], w3[:, 0] = 500.0, 0.0, 0.0
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (w3, "w3"), (b3, "b3"))]
    nodes = [
        helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Add", ["r1", "r2"], ["s"], name="add"),
        helper.make_node("MaxPool", ["s"], ["mp"], name="pool", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["p"], name="gap"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1),
    ]
    save_classifier(path, nodes, inits, "res", CHW, batch=batch)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return res_cnn(tmp_path_factory.mktemp("m") / "model.onnx")


def _images(n: int, seed: int) -> np.ndarray:
    """Noise images of varied brightness and contrast (pooled features differ per image)."""
    rng = np.random.default_rng(seed)
    lo, span = rng.uniform(0, 128, (n, 1, 1)), rng.uniform(16, 127, (n, 1, 1))
    return (lo + span * rng.random((n, SIZE, SIZE))).astype(np.uint8)


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("c") / "calib.npy"
    np.save(p, _images(64, 1))
    return p


def _ctx(w, fp32: Path, logs: list, **opts) -> ExportContext:
    lm = LoadedModel(module=None, name="res", input_size=CHW, preprocess=PRE, labels=LABELS)
    staged = w.path_for("model.onnx")
    if not staged.exists():
        staged.write_bytes(fp32.read_bytes())
    fp32_art = w.add_artifact("model.onnx", "onnxruntime", "fp32",
                              [TensorSpec("input", [-1, *CHW], layout="NCHW")],
                              [TensorSpec("logits", [-1, 10])])
    return ExportContext(model=lm, options=ExportOptions(**opts), profile=None, precision="int8",
                         writer=w, fp32_onnx=staged, log=logs.append, artifacts=[fp32_art])


def _export_onnx_target(out: Path, fp32: Path, **opts):
    """What ``edgecnn export --target onnx --precision int8`` runs after model.onnx."""
    logs: list[str] = []
    with BundleWriter(out, Manifest(model="res", preprocess=PRE, labels=LABELS)) as w:
        arts = OnnxRuntimeBackend().export(_ctx(w, fp32, logs, **opts))
    return arts, logs


def _op_zero_points(path: Path) -> dict[str, set]:
    """op type of each QuantizeLinear's consumer -> the zero point dtypes feeding it."""
    m = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return {n.name: inits[n.input[2]].dtype for n in m.graph.node
            if n.op_type == "QuantizeLinear" and len(n.input) > 2 and n.input[2] in inits}


# -- the catalogue --------------------------------------------------------------------------
def test_catalogue_names_two_int8_onnx_graphs():
    e = catalog.entry("onnx")
    assert catalog.artifact_file("onnxruntime", "int8") == "model.int8.onnx"  # old callers
    assert catalog.artifact_file("onnxruntime", "int8", "tensorrt") == "model.int8.onnx"
    assert catalog.artifact_file("onnxruntime", "int8", "cpu") == "model.int8.cpu.onnx"
    assert e.precision_names() == ("fp32", "fp16", "int8", "int8-trt")
    assert e.resolve_variant("int8", None) == "cpu"
    assert e.resolve_variant("int8", "trt") == e.resolve_variant("int8", "TensorRT") == "tensorrt"
    with pytest.raises(UnknownTargetError, match="no int8-gpu artifact"):
        e.resolve_variant("int8", "gpu")
    assert catalog.entry("tflite").precision_names() == ("fp32", "fp16", "int8")
    assert catalog.artifact_file("tflite", "int8") == "model.int8.tflite"


# -- one calibration, two graphs -----------------------------------------------------------
def test_onnx_int8_export_writes_both_graphs_from_one_calibration(model, calib_npy, tmp_path):
    out = tmp_path / "b"
    arts, logs = _export_onnx_target(out, model, calib=str(calib_npy), calib_samples=48)
    cpu, trt = arts
    assert (cpu.file, cpu.details["shaped_for"]) == ("model.int8.cpu.onnx", "cpu")
    assert (trt.file, trt.details["shaped_for"]) == ("model.int8.onnx", "tensorrt")
    assert sum("calibrated" in m for m in logs) == 1  # one calibration pass for both
    assert cpu.details["calibration"] == trt.details["calibration"]
    assert cpu.details["calibration_cache"] == trt.details["calibration_cache"] \
        == "calibration.minmax.json"
    # the cache holds every tensor either graph quantizes, with (min, max)
    cache = json.loads((out / "calibration.minmax.json").read_text())["ranges"]
    need = scheme_tensors(onnx.load(str(model)), [CPU_QDQ.tensors, TENSORRT_QDQ.tensors])
    assert set(need) <= set(cache["amax"]) and set(need) <= set(cache["stats"])
    assert {"s", "mp", "r2"} <= set(need)  # Add / MaxPool / Relu outputs: CPU graph only
    # the TensorRT graph is exactly what the TensorRT path alone makes from the same ranges
    from edgecnn.quantize.ranges import ActivationRanges

    ranges = ActivationRanges.from_dict(cache)
    quantize_onnx(model, tmp_path / "trt_alone.onnx", ranges, scheme=TENSORRT_QDQ)
    assert (tmp_path / "trt_alone.onnx").read_bytes() == (out / "model.int8.onnx").read_bytes()
    # shapes: CPU = uint8 activations, int32 bias, Q/DQ at the Add; TensorRT = int8 only
    zp_cpu, zp_trt = _op_zero_points(out / cpu.file), _op_zero_points(out / trt.file)
    assert {np.dtype(d) for d in zp_cpu.values()} == {np.dtype(np.uint8)}
    assert {np.dtype(d) for d in zp_trt.values()} == {np.dtype(np.int8)}
    g = onnx.load(str(out / cpu.file)).graph
    add = next(n for n in g.node if n.op_type == "Add")
    producers = {o: n.op_type for n in g.node for o in n.output}
    assert {producers[i] for i in add.input} == {"DequantizeLinear"}
    inits = {i.name: i for i in g.initializer}
    assert any(i.data_type == TensorProto.INT32 for i in inits.values())  # quantized bias
    assert producers["logits"] == "Gemm"  # the logits stay float: no Q/DQ on the graph output
    assert producers[next(n for n in g.node if n.op_type == "Gemm").input[0]] == "DequantizeLinear"
    assert cpu.details["quantization"]["activation_type"] == "QUInt8"
    assert cpu.details["qdq_check"].startswith("not applicable")
    assert trt.details["qdq_check"] == "passed"
    assert (out / "quantization_report.cpu.json").is_file()
    assert (out / "quantization_report.json").is_file()
    assert cpu.details["report"] == "quantization_report.cpu.json"


def test_cpu_graph_runs_on_integer_kernels(model, calib_npy, tmp_path):
    """ONNX Runtime fuses the CPU graph into QLinear* / integer ops; the TensorRT graph's
    convolutions mostly stay float (its Q/DQ feeds float outputs)."""
    out = tmp_path / "b"
    _export_onnx_target(out, model, calib=str(calib_npy), calib_samples=48)

    def optimized_ops(name: str) -> list[str]:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(tmp_path / f"opt_{name}")
        ort.InferenceSession(str(out / name), so, providers=["CPUExecutionProvider"])
        return [n.op_type for n in onnx.load(str(tmp_path / f"opt_{name}")).graph.node]

    cpu_ops = optimized_ops("model.int8.cpu.onnx")
    assert cpu_ops.count("QLinearConv") == 2 and "Conv" not in cpu_ops
    assert "QLinearAdd" in cpu_ops
    trt_ops = optimized_ops("model.int8.onnx")
    assert "QLinearAdd" not in trt_ops and "Add" in trt_ops


def test_cpu_ladder_takes_7_bit_weights_where_8_bit_saturate(model, calib_npy, tmp_path):
    """x86 without VNNI sums u8 x s8 pairs in int16 (vpmaddubsw), which saturates with full
    8-bit weights: a trained resnet8's CPU graph fell to cosine 0.87 on an AVX2-only CPU. The
    ladder's second rung is the same shape with weights in [-64, 64] (2 * 255 * 64 < 2**15);
    the first keeps 8 bits, and so does the TensorRT graph."""
    from edgecnn.quantize.calibration import load_calibration
    from edgecnn.quantize.int8 import CPU_LADDER

    assert [s.reduce_range for s in CPU_LADDER] == [False, True, True, True]
    assert CPU_LADDER[1].op_types == CPU_QDQ.op_types and "7-bit" in CPU_LADDER[1].describe()
    assert CPU_LADDER[1].to_dict()["reduce_range"] is True
    assert "reduce_range" not in TENSORRT_QDQ.to_dict() and "reduce_range" not in CPU_QDQ.to_dict()
    calib = load_calibration(str(calib_npy), PRE, CHW, samples=16, seed=0)
    need = scheme_tensors(onnx.load(str(model)), [CPU_QDQ.tensors])
    ranges = collect_ranges(model, [calib.data], "minmax", progress=False, tensors=need)

    def weight_extremes(scheme) -> tuple[int, int]:
        path = tmp_path / f"{scheme.name}.onnx"
        quantize_onnx(model, path, ranges, scheme=scheme)
        g = onnx.load(str(path)).graph
        ints = [numpy_helper.to_array(t) for t in g.initializer if t.data_type == TensorProto.INT8
                and numpy_helper.to_array(t).ndim == 4]
        assert ints, f"{path.name} holds no int8 conv weights"
        return min(int(w.min()) for w in ints), max(int(w.max()) for w in ints)

    lo, hi = weight_extremes(CPU_LADDER[1])
    assert -64 <= lo and hi <= 64, (lo, hi)
    lo, hi = weight_extremes(CPU_QDQ)
    assert hi == 127 or lo <= -127, "the first rung keeps full 8-bit weights"


def test_tensorrt_backend_still_gets_the_tensorrt_graph_only(model, calib_npy, tmp_path):
    logs: list[str] = []
    with BundleWriter(tmp_path / "b", Manifest(model="res", preprocess=PRE, labels=LABELS)) as w:
        ctx = _ctx(w, model, logs, calib=str(calib_npy), calib_samples=16)
        art = ensure_onnx(ctx, "int8")  # what edgecnn/backends/tensorrt.py calls
        assert art.file == "model.int8.onnx" and art.details["shaped_for"] == "tensorrt"
        assert ensure_onnx(ctx, "int8", "tensorrt") is art  # staged once
    assert not (tmp_path / "b" / "model.int8.cpu.onnx").exists()


def test_old_cache_is_extended_then_serves_both_graphs(model, calib_npy, tmp_path):
    """A cache written before the CPU graph (Conv/Gemm inputs only) is recomputed once; the
    next export reuses it for both graphs."""
    from edgecnn.bundle import sha256_file
    from edgecnn.quantize.cache import CacheKey, save_cache
    from edgecnn.quantize.calibration import load_calibration

    out = tmp_path / "b"
    with BundleWriter(out, Manifest(model="res", preprocess=PRE, labels=LABELS)) as w:
        w.path_for("model.onnx").write_bytes(model.read_bytes())
        calib = load_calibration(str(calib_npy), PRE, CHW, samples=16, seed=0)
        old = collect_ranges(model, [calib.data], "minmax", progress=False)
        save_cache(w.path_for("calibration.minmax.json"),
                   CacheKey.make(sha256_file(model), calib.sha256, "minmax", PRE), old)
        w.add_artifact("model.onnx", "onnxruntime", "fp32",
                       [TensorSpec("input", [-1, *CHW], layout="NCHW")],
                       [TensorSpec("logits", [-1, 10])])
    arts, logs = _export_onnx_target(out, model, calib=str(calib_npy), calib_samples=16)
    assert [a.details["cache"] for a in arts] == ["computed", "computed"]
    arts, logs = _export_onnx_target(out, model, calib=str(calib_npy), calib_samples=16)
    assert [a.details["cache"] for a in arts] == ["reused", "reused"]
    assert not any("calibrated" in m for m in logs)


# -- identity: manifest, runtime.load, old bundles -------------------------------------------
@pytest.fixture(scope="module")
def both(model, calib_npy, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("both") / "bundle"
    _export_onnx_target(out, model, calib=str(calib_npy), calib_samples=48)
    return out


def test_manifest_records_and_routing(both):
    import edgecnn.runtime as rt

    raw = json.loads((both / "manifest.json").read_text())
    assert raw["schema_version"] == SCHEMA_VERSION  # the variant itself needs no bump
    shaped = {a["file"]: a["details"].get("shaped_for") for a in raw["artifacts"]}
    assert shaped == {"model.onnx": None, "model.int8.cpu.onnx": "cpu",
                      "model.int8.onnx": "tensorrt"}
    m = Bundle.open(both).manifest
    assert [a.key for a in m.artifacts] == ["onnxruntime:fp32", "onnxruntime:int8",
                                            "onnxruntime:int8-trt"]
    assert m.find("onnxruntime", "int8").file == "model.int8.cpu.onnx"
    assert m.find("onnxruntime", "int8-trt").file == "model.int8.onnx"
    assert m.find("onnxruntime", "int8", "tensorrt").file == "model.int8.onnx"
    assert m.find("onnxruntime", "int8", "cpu").file == "model.int8.cpu.onnx"
    assert m.find().file == "model.onnx"
    assert m.find(precision="int8-trt").file == "model.int8.onnx"  # any backend
    import dataclasses

    mixed = dataclasses.replace(m, artifacts=[*m.artifacts, dataclasses.replace(
        m.artifacts[0], file="model.int8.tflite", backend="tflite", precision="int8")])
    assert mixed.find(precision="int8-trt").file == "model.int8.onnx"  # tflite has no -trt
    assert mixed.find("tflite", "int8").file == "model.int8.tflite"
    with pytest.raises(BundleError, match="tflite has no int8-trt artifact"):
        mixed.find("tflite", "int8-trt")
    with rt.load(both, backend="onnxruntime", precision="int8") as s:
        assert s.artifact.file == "model.int8.cpu.onnx" and s.artifact.variant == "cpu"
        x = normalize_uint8(_images(4, 9), PRE)
        assert s.run(x).shape == (4, 10)
    with rt.load(both, backend="onnx", precision="int8-trt") as s:
        assert s.artifact.file == "model.int8.onnx" and "int8-trt" in repr(s)
    with rt.load(both, backend="onnxruntime", precision="int8", variant="trt") as s:
        assert s.artifact.file == "model.int8.onnx"
    with pytest.raises(BundleError, match="no int8-gpu artifact"):
        rt.load(both, backend="onnxruntime", precision="int8-gpu")


def _old_bundle(both: Path, out: Path) -> Path:
    """A bundle as edgecnn wrote it before the CPU graph: model.onnx + model.int8.onnx, no
    shaped_for, no model.int8.cpu.onnx."""
    from edgecnn.bundle import sha256_file

    out.mkdir()
    for f in ("model.onnx", "model.int8.onnx"):
        (out / f).write_bytes((both / f).read_bytes())
    raw = json.loads((both / "manifest.json").read_text())
    raw["artifacts"] = [a for a in raw["artifacts"] if a["file"] != "model.int8.cpu.onnx"]
    for a in raw["artifacts"]:
        a["details"].pop("shaped_for", None)
        assert a["sha256"] == sha256_file(out / a["file"])
    (out / "manifest.json").write_text(json.dumps(raw))
    return out


def test_old_bundle_loads_and_routes_as_before(both, tmp_path):
    import edgecnn.runtime as rt

    old = _old_bundle(both, tmp_path / "old")
    m = Bundle.open(old).manifest
    a = m.find("onnxruntime", "int8")
    assert a.file == "model.int8.onnx" and a.variant == "tensorrt" and a.key == "onnxruntime:int8-trt"
    with rt.load(old, backend="onnxruntime", precision="int8") as s:  # as before: the one int8
        assert s.artifact.file == "model.int8.onnx"
    with pytest.raises(BundleError, match=r"no artifact onnxruntime:int8-cpu .*int8-trt"):
        m.find("onnxruntime", "int8", "cpu")


# -- bench targets ---------------------------------------------------------------------------
def test_bench_target_grammar():
    from edgecnn.bench.targets import ALL_TARGETS, parse_target, parse_targets

    t = parse_target("onnx:int8")
    assert (t.variant, t.name, t.artifact_file, t.spec) == ("cpu", "onnx:int8",
                                                           "model.int8.cpu.onnx", "int8")
    for text in ("onnx:int8-trt", "ort:int8-tensorrt", "onnxruntime:INT8-TRT"):
        t = parse_target(text)
        assert (t.variant, t.name, t.artifact_file) == ("tensorrt", "onnx:int8-trt", "model.int8.onnx")
        assert "accuracy proxy" in t.title
    assert parse_target("onnx:int8-cpu") == parse_target("onnx:int8")
    assert parse_target("tensorrt:int8").artifact_file == "model.int8.engine"
    assert parse_target("onnx:fp32").variant == ""
    assert [x.name for x in parse_targets("onnx:int8,onnx:int8-cpu,onnx:int8-trt")] == \
        ["onnx:int8", "onnx:int8-trt"]
    assert "onnx:int8-trt" in ALL_TARGETS
    for bad, msg in (("onnx:int8-gpu", "no precision int8-gpu"), ("tflite:int8-trt", "int8-trt"),
                     ("torch:fp32-trt", "torch has no precision")):
        with pytest.raises(UnknownTargetError, match=msg):
            parse_target(bad)


def test_bench_runs_both_graphs_labelled_and_old_bundles_route_as_before(both, tmp_path):
    from edgecnn.bench.runner import BenchOptions, run_bench

    fast = dict(warmup=1, iterations=3, plot=False, save=False, isolate=False, threads=1)
    rep = run_bench(str(both), BenchOptions(targets="onnx:fp32,onnx:int8,onnx:int8-trt", **fast),
                    log=lambda m: None)
    rows = {r.target: r for r in rep.results}
    assert all(rows[t].status == "ok" for t in ("onnx:fp32", "onnx:int8", "onnx:int8-trt"))
    assert rows["onnx:int8"].artifact == "model.int8.cpu.onnx"
    assert rows["onnx:int8-trt"].artifact == "model.int8.onnx"
    assert any("TensorRT's accuracy proxy, not the CPU artifact" in w
               for w in rows["onnx:int8-trt"].warnings)
    # the CPU artifact carries no proxy warning (only, on a tiny net, the honest "no faster")
    assert not [w for w in rows["onnx:int8"].warnings if "proxy" in w]
    old = _old_bundle(both, tmp_path / "old")
    rep = run_bench(str(old), BenchOptions(targets="onnx:int8,onnx:int8-trt", **fast),
                    log=lambda m: None)
    rows = {r.target: r for r in rep.results}
    assert rows["onnx:int8-trt"].status == "ok"
    assert rows["onnx:int8"].status == "skipped" and "CPU graph" in rows["onnx:int8"].reason


# -- gates: parity and the accuracy budget on the CPU graph ---------------------------------
def _labelled_eval(fp32: Path, tmp: Path, n: int = 200) -> Path:
    imgs = _images(n, 7)
    labels = run_batched(inference_session(fp32), normalize_uint8(imgs, PRE)).argmax(1)
    p = tmp / "eval.npz"
    np.savez(p, images=imgs, labels=labels, classes=np.array(LABELS))
    return p


def test_cpu_graph_parity_gate_and_record(both):
    a = Bundle.open(both).manifest.find("onnxruntime", "int8")
    p = a.details["parity"]
    assert p["passed"] is True and p["gated"] == "parity" and "reference" not in p
    # the first passing shape quantizes every op type, with the weight bits this CPU runs
    # better; a slower-than-1.3x one may have been replaced by a faster shape (timed)
    speed = a.details["shape_speed"]
    assert next(iter(speed["shapes"])) in ("cpu", "cpu-7bit")
    assert a.details["scheme"] == speed["kept"]
    # 7-bit weights are tried only where this CPU's u8 x s8 kernels can saturate (x86 without
    # VNNI); the choice and the CPU it was made on are recorded either way
    choice = a.details["weight_bits_choice"]
    assert a.details["weight_bits"] == (7 if a.details["quantization"].get("reduce_range")
                                        else 8)
    assert choice["tried_7bit"] is int16_saturation_risk() and choice["flags"] == cpu_flags()
    if choice["tried_7bit"]:
        assert set(choice["top1_agreement"]) == {"8", "7"} and choice["samples"] >= 64
    else:
        assert a.details["weight_bits"] == 8
    assert p["cosine"] >= p["tolerance"]["min_cosine"] == 0.95
    assert p["top1_agreement"] >= p["tolerance"]["min_top1"] == 0.5
    trt = Bundle.open(both).manifest.find("onnxruntime", "int8-trt")
    assert trt.details["parity"]["gated"] == "no (reported)"




def test_slow_first_shape_times_the_others_and_keeps_the_fastest(model, calib_npy, tmp_path,
                                                                 monkeypatch):
    """With the threshold out of reach every shape is timed (a real export, real ONNX Runtime):
    the kept one is the fastest that passed the gate, recorded with what was timed."""
    import edgecnn.backends.onnxruntime as ort_backend

    monkeypatch.setattr(ort_backend, "SPEED_SEARCH_BELOW", 1e9)
    monkeypatch.setattr(ort_backend, "SEARCH_MIN_MS", 0.0)  # this tiny net runs in microseconds
    arts, logs = _export_onnx_target(tmp_path / "b", model, calib=str(calib_npy),
                                     calib_samples=48)
    cpu = next(a for a in arts if a.details["shaped_for"] == "cpu")
    speed = cpu.details["shape_speed"]
    timed = {k: v for k, v in speed["shapes"].items() if not isinstance(v, str)}
    assert len(speed["shapes"]) >= 3 and "tensorrt" in speed["shapes"]
    first = next(iter(speed["shapes"]))
    fastest = min(timed, key=timed.get)
    assert speed["kept"] == cpu.details["scheme"]
    # the fastest passing shape, unless it is not clearly (5 %) faster than the first
    assert speed["kept"] == (fastest if timed[fastest] * ort_backend.SWITCH_GAIN <= timed[first]
                             else first)
    assert cpu.details["parity"]["passed"] is True
    assert any("timing the shapes that quantize less" in m for m in logs)
    assert not list((tmp_path / "b").glob("*.onnx.*"))  # no candidate file left behind
    # the quantization report reuses the shape check's batch-1 timings (not timed twice)
    report = json.loads((tmp_path / "b" / "quantization_report.cpu.json").read_text())
    assert report["latency_ms"]["int8"]["1"] == timed[speed["kept"]]
    assert report["latency_ms"]["fp32"]["1"] == speed["fp32_ms"]
    # the file in the bundle is the kept shape (what runs is what the manifest says)
    assert Bundle.open(tmp_path / "b").manifest.find("onnxruntime", "int8").details[
        "scheme"] == speed["kept"]


def test_a_net_too_fast_to_time_keeps_its_first_shape(model, calib_npy, tmp_path, monkeypatch):
    """Under SEARCH_MIN_MS the shapes are not ranked by timing (the export stays repeatable),
    however slow the first shape looks next to model.onnx."""
    import edgecnn.backends.onnxruntime as ort_backend

    monkeypatch.setattr(ort_backend, "SPEED_SEARCH_BELOW", 1e9)
    arts, logs = _export_onnx_target(tmp_path / "b", model, calib=str(calib_npy),
                                     calib_samples=48)
    cpu = next(a for a in arts if a.details["shaped_for"] == "cpu")
    speed = cpu.details["shape_speed"]
    assert speed["fp32_ms"] < ort_backend.SEARCH_MIN_MS and "too fast" in speed["searched"]
    assert list(speed["shapes"]) == [cpu.details["scheme"]] == [speed["kept"]]
    assert not any("timing the shapes" in m for m in logs)

def test_fixed_batch_model_gets_both_graphs_and_the_shape_search(calib_npy, tmp_path,
                                                                 monkeypatch):
    """A model exported with a fixed batch (e.g. from a .pt2) runs only that batch: the weight
    trial, the parity runs and the shape search all feed it batches of 4."""
    import edgecnn.backends.onnxruntime as ort_backend

    monkeypatch.setattr(ort_backend, "SPEED_SEARCH_BELOW", 1e9)
    monkeypatch.setattr(ort_backend, "SEARCH_MIN_MS", 0.0)  # this tiny net runs in microseconds
    fp32 = res_cnn(tmp_path / "fixed.onnx", batch=4)
    arts, _ = _export_onnx_target(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=30)
    cpu = next(a for a in arts if a.details["shaped_for"] == "cpu")
    speed = cpu.details["shape_speed"]
    assert speed["batch"] == 4 and len(speed["shapes"]) >= 3
    assert {a.details["shaped_for"] for a in arts} == {"cpu", "tensorrt"}

# -- a graph whose weight bits were chosen on one CPU, run on another ------------------------
VNNI_CHOICE = {"cpu": "Example VNNI CPU", "flags": ["avx2", "avx512_vnni"], "tried_7bit": False}


@pytest.mark.parametrize("details,warns", [
    ({"weight_bits": 8, "weight_bits_choice": VNNI_CHOICE}, True),
    ({"weight_bits": 8, "weight_bits_choice": dict(VNNI_CHOICE, tried_7bit=True)}, False),
    ({"weight_bits": 7, "weight_bits_choice": dict(VNNI_CHOICE, tried_7bit=True)}, False),
    ({"scheme": "cpu"}, False),  # a bundle from before the choice was recorded
])
def test_saturation_note_only_for_8_bits_chosen_without_a_trial(monkeypatch, details, warns):
    import edgecnn.platform_info as pi
    from edgecnn.runtime.ort import saturation_note

    monkeypatch.setattr(pi, "int16_saturation_risk", lambda root="/": True)
    note = saturation_note(details)
    assert bool(note) is warns
    if warns:
        assert "Example VNNI CPU" in note and "edgecnn eval" in note and "7-bit" in note
    monkeypatch.setattr(pi, "int16_saturation_risk", lambda root="/": False)
    assert saturation_note(details) is None  # a CPU that cannot saturate: nothing to say


def test_loading_a_vnni_built_graph_on_a_cpu_without_vnni_warns(both, tmp_path, monkeypatch):
    import shutil
    import warnings

    import edgecnn.platform_info as pi
    import edgecnn.runtime as rt

    copy = tmp_path / "bundle"
    shutil.copytree(both, copy)
    m = json.loads((copy / "manifest.json").read_text())
    for a in m["artifacts"]:
        if a["details"].get("shaped_for") == "cpu":
            a["details"].update(weight_bits=8, weight_bits_choice=VNNI_CHOICE)
    (copy / "manifest.json").write_text(json.dumps(m))
    monkeypatch.setattr(pi, "int16_saturation_risk", lambda root="/": True)
    with pytest.warns(RuntimeWarning, match="no VNNI"):
        s = rt.load(copy, backend="onnxruntime", precision="int8")
    assert "Example VNNI CPU" in s.saturation_note
    monkeypatch.setattr(pi, "int16_saturation_risk", lambda root="/": False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rt.load(copy, backend="onnxruntime", precision="int8").saturation_note is None
    # edgecnn bench says it under the table (its workers' own warnings would go unseen)
    from edgecnn.bench.runner import BenchOptions, run_bench

    monkeypatch.setattr(pi, "int16_saturation_risk", lambda root="/": True)
    rep = run_bench(str(copy), BenchOptions(targets="onnx:int8", warmup=1, iterations=2,
                                            plot=False, save=False, isolate=False, threads=1),
                    log=lambda m: None)
    row = next(r for r in rep.results if r.target == "onnx:int8")
    assert any("no VNNI" in w for w in row.warnings)
    # edgecnn predict hides library warnings: it prints the note on stderr itself
    from click.testing import CliRunner
    from PIL import Image

    from edgecnn.cli.main import cli

    size = Bundle.open(copy).manifest.preprocess.size
    Image.new("RGB", tuple(size[::-1]), (90, 40, 200)).save(tmp_path / "x.png")
    res = CliRunner().invoke(cli, ["predict", str(copy), str(tmp_path / "x.png"),
                                   "--backend", "onnxruntime", "--precision", "int8"])
    assert res.exit_code == 0, res.output
    assert "note:" in res.stderr and "no VNNI" in res.stderr and "no VNNI" not in res.stdout


def test_run_batched_bounds_the_batch_by_input_elements():
    from edgecnn.runtime import ort as ort_rt

    class Recorder:  # stands in for an InferenceSession: this test is about the batching only
        def __init__(self):
            self.sizes = []

        def get_inputs(self):
            return [type("I", (), {"name": "x", "shape": ["N", 3, 224, 224]})()]

        def run(self, outputs, feed):
            self.sizes.append(len(feed["x"]))
            return [feed["x"].reshape(len(feed["x"]), -1)[:, :2]]

    big, small = Recorder(), Recorder()
    out = ort_rt.run_batched(big, np.zeros((40, 3, 224, 224), np.float32))
    assert out.shape == (40, 2) and max(big.sizes) * 3 * 224 * 224 <= ort_rt.RUN_BATCH_ELEMENTS
    ort_rt.run_batched(small, np.zeros((100, 1, 28, 28), np.float32))
    assert small.sizes == [64, 36]  # small inputs keep the usual batch of 64

def sigmoid_cnn(path: Path) -> Path:
    """conv1 -> Sigmoid -> gap -> flatten -> gemm; channel 0 of conv1's output is ~5000 and the
    Gemm ignores it. The TensorRT graph quantizes only the Gemm's input (sigmoid outputs in
    [0, 1]: harmless); every CPU shape also quantizes conv1's output, whose ~20-wide uint8 steps
    flatten the small channels before the Sigmoid: no CPU graph is faithful here."""
    rng = np.random.default_rng(2)
    w1 = rng.normal(0, 0.5, (8, 1, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w3 = rng.normal(0, 1.0, (10, 8)).astype(np.float32)
    b1[0], w3[:, 0] = 5000.0, 0.0
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w3, "w3"), (np.zeros(10, np.float32), "b3"))]
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Sigmoid", ["c1"], ["s1"], name="sig"),
             helper.make_node("GlobalAveragePool", ["s1"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["logits"], name="fc", transB=1)]
    save_classifier(path, nodes, inits, "sig", CHW, check=False)
    return path


def test_cpu_graph_failing_parity_is_one_clear_line(calib_npy, tmp_path):
    fp32 = sigmoid_cnn(tmp_path / "sig.onnx")
    with pytest.raises(ParityError) as err:
        _export_onnx_target(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=32)
    msg = str(err.value)
    assert "\n" not in msg and "model.int8.cpu.onnx (cpu int8 graph) disagrees with model.onnx" in msg
    assert "the TensorRT-shaped graph:" in msg and "even with cpu-weighted-only" in msg
    assert "--max-accuracy-drop" in msg
    assert not (tmp_path / "b").exists()  # nothing half-written


def test_cpu_graph_falls_back_to_shapes_that_quantize_less(calib_npy, tmp_path):
    """A model where the full CPU shape is less faithful than the TensorRT-shaped graph gets
    the next shape of the ladder; the manifest says which."""
    from edgecnn.quantize.int8 import CPU_LADDER

    assert [s.name for s in CPU_LADDER] == ["cpu", "cpu-7bit", "cpu-float-merges",
                                            "cpu-weighted-only"]
    assert "Add" not in CPU_LADDER[2].op_types and CPU_LADDER[3].op_types == ("Conv", "Gemm",
                                                                             "MatMul")
    fp32 = res_cnn(tmp_path / "sens.onnx", outliers=True)  # fails 0.95 with every shape
    arts, logs = _export_onnx_target(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=32)
    cpu, trt = arts
    p = cpu.details["parity"]
    assert p["passed"] and p["reference"]["graph"] == "tensorrt"
    assert p["gated"] == "parity vs the TensorRT-shaped graph"
    assert p["cosine"] >= p["reference"]["cosine"] - 0.01
    # a ladder rung, or the TensorRT shape where it timed clearly faster (shape_speed)
    assert cpu.details["scheme"] == cpu.details["shape_speed"]["kept"] in (
        "cpu", "cpu-7bit", "cpu-float-merges", "cpu-weighted-only", "tensorrt")
    assert trt.details["parity"]["cosine"] == pytest.approx(p["reference"]["cosine"])


def chain_cnn(path: Path) -> Path:
    """conv1 relu conv2 relu conv3 relu maxpool gap flatten gemm; channel 0 of conv1's output
    is ~500 for every input and conv2 ignores it: the tensor between conv1 and conv2 is
    hypersensitive, and in the CPU graph both its writer (conv1's output Q/DQ, relu1) and its
    reader (conv2) quantize it."""
    rng = np.random.default_rng(5)
    ws = [rng.normal(0, 0.5, (8, 1, 3, 3)), rng.normal(0, 0.3, (8, 8, 3, 3)),
          rng.normal(0, 0.3, (8, 8, 3, 3))]
    bs = [rng.normal(0, 0.1, 8) for _ in ws]
    bs[0][0], ws[1][:, 0] = 500.0, 0.0
    inits, nodes, x = [], [], "input"
    for i, (w, b) in enumerate(zip(ws, bs), 1):
        inits += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                  numpy_helper.from_array(b.astype(np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}",
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}")]
        x = f"r{i}"
    inits += [numpy_helper.from_array(rng.normal(0, 1, (10, 8)).astype(np.float32), "wf"),
              numpy_helper.from_array(np.zeros(10, np.float32), "bf")]
    nodes += [helper.make_node("MaxPool", [x], ["mp"], name="pool", kernel_shape=[2, 2],
                               strides=[2, 2]),
              helper.make_node("GlobalAveragePool", ["mp"], ["p"], name="gap"),
              helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "wf", "bf"], ["logits"], name="fc", transB=1)]
    save_classifier(path, nodes, inits, "chain", CHW, check=False)
    return path


def test_float_island_keeps_the_float_layer_float_in_the_cpu_graph(tmp_path):
    from edgecnn.quantize.int8 import float_island

    fp32 = chain_cnn(tmp_path / "chain.onnx")
    assert float_island(fp32, ["conv2"], TENSORRT_QDQ) == ["conv2"]
    assert set(float_island(fp32, ["conv2"], CPU_QDQ)) == {"conv2", "relu1", "relu2"}
    assert set(float_island(fp32, ["conv3"], CPU_QDQ)) == {"conv3", "relu2", "relu3", "pool",
                                                          "gap", "flatten"}
    r = res_cnn(tmp_path / "res.onnx")  # an Add is left in float but not crossed
    assert set(float_island(r, ["conv2"], CPU_QDQ)) == {"conv2", "relu1", "relu2", "add"}


def test_accuracy_budget_on_the_cpu_graph(calib_npy, tmp_path):
    fp32 = chain_cnn(tmp_path / "sens.onnx")
    ev = _labelled_eval(fp32, tmp_path)
    arts, logs = _export_onnx_target(tmp_path / "b", fp32, calib=str(calib_npy), calib_samples=32,
                                     max_accuracy_drop=10.0, eval=str(ev))
    cpu = next(a for a in arts if a.details["shaped_for"] == "cpu")
    d = cpu.details
    assert d["accuracy"]["drop_plain"] > 10.0 and d["accuracy_drop"] <= 10.0
    assert set(d["excluded_layers"]) == {"conv1", "conv2"}  # writer and reader of the tensor
    assert d["parity"]["gated"] == "accuracy budget"
    rep = json.loads((tmp_path / "b" / "quantization_report.cpu.json").read_text())
    assert rep["accuracy"]["drop"] == d["accuracy_drop"]
    assert rep["excluded_layers"] == d["excluded_layers"]
    # the excluded layer reads a float activation in the CPU graph too
    g = onnx.load(str(tmp_path / "b" / "model.int8.cpu.onnx")).graph
    excluded = next(n for n in g.node if n.name == d["excluded_layers"][0])
    assert excluded.op_type in ("Conv", "Gemm")
    assert any("accuracy budget on model.int8.cpu.onnx" in m for m in logs)
