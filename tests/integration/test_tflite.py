"""TFLite backend: real litert-torch conversion, real LiteRT runs, real bundle folders.

Until the export pipeline drives it, the tests build the ExportContext themselves
(BundleWriter + LoadedModel), exactly as the pipeline's contract describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("litert_torch", reason="needs litert-torch (pip install 'edgecnn[tflite]')")
pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install 'edgecnn[litert]')")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import edgecnn.runtime as rt  # noqa: E402
from edgecnn.backends.registry import ExportContext, get_backend  # noqa: E402
from edgecnn.bundle import BundleWriter  # noqa: E402
from edgecnn.models.loading import LoadedModel  # noqa: E402
from edgecnn.options import ExportOptions  # noqa: E402
from edgecnn.errors import CalibrationError, ExportError, InputError  # noqa: E402
from edgecnn.manifest import Manifest, Preprocess  # noqa: E402
from edgecnn.models import create_model, get_model_info, list_models  # noqa: E402
from edgecnn.targets import TargetProfile  # noqa: E402

pytestmark = pytest.mark.tflite
REPO = Path(__file__).resolve().parents[2]


# -- helpers --------------------------------------------------------------------------------

def _preprocess(chw) -> Preprocess:
    c, h, w = chw
    return Preprocess(size=[h, w], channels=c, mean=[0.5] * c, std=[0.25] * c,
                      channel_order="L" if c == 1 else "RGB")


def _loaded(module, name, chw, classes=10) -> LoadedModel:
    return LoadedModel(module=module.eval(), name=name, input_size=tuple(chw),
                       preprocess=_preprocess(chw), labels=[f"c{i}" for i in range(classes)])


def _npz(path: Path, chw, n=48, labels=None, seed=0) -> str:
    c, h, w = chw
    rng = np.random.default_rng(seed)
    shape = (n, h, w) if c == 1 else (n, h, w, 3)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    if labels is None:
        labels = rng.integers(0, 10, n)
    np.savez(path, images=images, labels=np.asarray(labels, dtype=np.int64),
             classes=np.array([f"c{i}" for i in range(10)]))
    return str(path)


LOG = lambda m: None  # noqa: E731 - tests may swap in print


def export(loaded: LoadedModel, out: Path, precision: str, **opts):
    """What the pipeline does for --target tflite, minus the ONNX step this backend ignores."""
    backend = get_backend("tflite")
    options = ExportOptions(target="tflite", precision=precision, out=out, **opts)
    profile = TargetProfile(name="tflite", backend="tflite", precision=precision)
    backend.check(options, profile)
    manifest = (Manifest.from_json((out / "manifest.json").read_text())
                if (out / "manifest.json").is_file()
                else Manifest(model=loaded.name, preprocess=loaded.preprocess, labels=loaded.labels))
    with BundleWriter(out, manifest) as writer:
        ctx = ExportContext(model=loaded, options=options, profile=profile, precision=precision,
                            writer=writer, fp32_onnx=out / "model.onnx", log=LOG)
        artifacts = backend.export(ctx)
    return artifacts[0]


def _torch(module, x_nchw):
    with torch.no_grad():
        return module(torch.from_numpy(x_nchw)).numpy()


# -- the fast path: a small model at fp32 and int8 -------------------------------------------

@pytest.fixture(scope="module")
def lenet_bundle(tmp_path_factory):
    torch.manual_seed(0)
    chw = get_model_info("lenet5").test_size
    loaded = _loaded(create_model("lenet5", num_classes=10, in_chans=chw[0], img_size=chw[1]),
                     "lenet5", chw)
    root = tmp_path_factory.mktemp("tfl")
    calib = _npz(root / "calib.npz", chw)
    out = root / "lenet5"
    fp32 = export(loaded, out, "fp32")
    int8 = export(loaded, out, "int8", calib=calib, calib_samples=32)
    return loaded, out, fp32, int8, calib


def test_fp32_and_int8_artifacts_in_manifest(lenet_bundle):
    loaded, out, fp32, int8, _ = lenet_bundle
    manifest = json.loads((out / "manifest.json").read_text())
    files = {a["file"]: a for a in manifest["artifacts"]}
    assert set(files) == {"model.fp32.tflite", "model.int8.tflite"}
    for a in files.values():
        assert a["backend"] == "tflite"
        assert a["inputs"][0]["layout"] == "NHWC"
        assert a["inputs"][0]["shape"] == [-1, 32, 32, 1]
        assert a["details"]["parity"]["samples"] >= 1
        assert a["details"]["conversion_seconds"] > 0
    assert files["model.fp32.tflite"]["details"]["parity"]["max_abs_diff"] < 1e-4
    d8 = files["model.int8.tflite"]["details"]
    assert d8["parity"]["cosine"] > 0.95
    assert d8["observer"] == "minmax" and d8["float_layers"] == []
    assert d8["calibration"]["count"] == 32 and len(d8["calibration"]["sha256"]) == 64
    # full-integer: the input tensor is int8 with its scale and zero point recorded
    assert files["model.int8.tflite"]["inputs"][0]["dtype"] == "int8"
    assert files["model.int8.tflite"]["inputs"][0]["quant"]["scale"] > 0
    assert (out / "model.int8.tflite").stat().st_size < (out / "model.fp32.tflite").stat().st_size
    assert not list(out.glob("*.trial")) and not list(out.glob("*.tflite.*"))


def test_runtime_matches_torch(lenet_bundle):
    loaded, out, *_ = lenet_bundle
    x = np.random.default_rng(1).standard_normal((5, 1, 32, 32)).astype(np.float32)
    ref = _torch(loaded.module, x)
    with rt.load(out, backend="tflite", precision="fp32") as s:
        np.testing.assert_allclose(s.run(x), ref, atol=1e-4)
        with pytest.raises(InputError, match="input shape"):
            s.run(np.zeros((1, 1, 28, 28), np.float32))
    with rt.load(out, backend="tflite", precision="int8") as s:
        got = s.run(x)
        assert got.dtype == np.float32 and got.shape == ref.shape
        assert np.corrcoef(got.ravel(), ref.ravel())[0, 1] > 0.9


def test_runtime_needs_only_litert_and_numpy(lenet_bundle):
    _, out, *_ = lenet_bundle
    code = textwrap.dedent(f"""
        import sys, numpy as np
        import edgecnn.runtime as rt
        with rt.load({str(out)!r}, backend="tflite", precision="int8") as s:
            y = s.run(np.zeros((2, 1, 32, 32), np.float32))
            p = s.predict([np.zeros((32, 32), np.uint8)], top_k=3)
        assert y.shape == (2, 10), y.shape
        assert len(p[0]) == 3
        bad = [m for m in ("torch", "onnx", "onnxruntime", "tensorflow", "litert_torch")
               if m in sys.modules]
        assert not bad, bad
        print("ok", type(s).__name__, s.provider, s.api)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ok LiteRTSession ai_edge_litert.interpreter compiled" in res.stdout


def test_int8_compiled_model_and_interpreter_agree(lenet_bundle):
    """The default CompiledModel path quantises the input and dequantises the output with the
    tensors' own parameters, exactly as the Interpreter path does."""
    _, out, _, int8, _ = lenet_bundle
    x = np.random.default_rng(2).standard_normal((3, 1, 32, 32)).astype(np.float32)
    with rt.load(out, backend="tflite", precision="int8") as c, \
            rt.load(out, backend="tflite", precision="int8", api="interpreter") as i:
        assert (c.api, i.api) == ("compiled", "interpreter")
        step = int8.outputs[0].quant.scale
        np.testing.assert_allclose(c.run(x), i.run(x), atol=step * 1.01)
        assert np.abs(c.run(x)).max() > 10 * step  # not all zero-point


def _op_types(path: Path) -> dict[str, set[str]]:
    """op name -> dtypes of its first output, read without applying any delegate."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_path=str(path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    dtypes = {t["index"]: np.dtype(t["dtype"]).name for t in it.get_tensor_details()}
    ops: dict[str, set[str]] = {}
    for op in it._get_ops_details():
        ops.setdefault(op["op_name"], set()).add(dtypes[int(op["outputs"][0])])
    return ops


def test_int8_residual_adds_stay_integer(tmp_path):
    """ResNet's residual add + ReLU quantise as one int8 ADD (one ReLU module per use):
    no float ADD with DEQUANTIZE/QUANTIZE around it, which ran int8 as slow as fp32."""
    torch.manual_seed(0)
    chw = (3, 32, 32)  # resnet18: with one shared ReLU per block its 8 ADDs came out float
    loaded = _loaded(create_model("resnet18", num_classes=10, in_chans=3, img_size=32),
                     "resnet18", chw)
    export(loaded, tmp_path / "b", "int8", calib=_npz(tmp_path / "c.npz", chw, n=16),
           calib_samples=16)
    ops = _op_types(tmp_path / "b" / "model.int8.tflite")
    assert ops.get("ADD") == {"int8"}, ops
    assert "DEQUANTIZE" not in ops and "QUANTIZE" not in ops, ops
    assert ops["CONV_2D"] == {"int8"}


# -- argument checks and errors --------------------------------------------------------------

def test_check_rejects_bad_arguments():
    backend = get_backend("litert")
    assert backend is get_backend("tflite") and backend.name == "tflite"
    profile = TargetProfile(name="tflite", backend="tflite", precision="int8")
    with pytest.raises(CalibrationError, match="--calib"):
        backend.check(ExportOptions(target="tflite", precision="int8"), profile)
    with pytest.raises(ExportError, match="layout 'NCWH'"):
        backend.check(ExportOptions(target="tflite", precision="fp32", layout="NCWH"), profile)
    with pytest.raises(CalibrationError, match="--eval"):
        backend.check(ExportOptions(target="tflite", precision="int8", calib="x.npz",
                                    max_accuracy_drop=1.0), profile)


class _Block(nn.Module):
    def forward(self, x):
        return torch.linalg.svdvals(x)  # no TFLite lowering in litert-torch 0.10


class _Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.odd_block = _Block()
        self.head = nn.Linear(4 * 8, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.odd_block(self.stem(x)), 1))


def test_unsupported_op_names_the_layer(tmp_path):
    loaded = _loaded(_Unsupported(), "odd", (1, 8, 8))
    with pytest.raises(ExportError) as info:
        export(loaded, tmp_path / "odd", "fp32")
    msg = str(info.value)
    assert "odd_block" in msg and "svd" in msg
    assert not (tmp_path / "odd").exists()  # nothing half-written


def test_nchw_layout_option(tmp_path):
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                      nn.Flatten(), nn.Linear(8, 10))
    loaded = _loaded(m, "tiny", (3, 16, 16))
    art = export(loaded, tmp_path / "tiny", "fp32", layout="NCHW")
    assert art.inputs[0].layout == "NCHW" and art.inputs[0].shape == [-1, 3, 16, 16]
    assert art.details["layout"] == "NCHW"
    x = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    with rt.load(tmp_path / "tiny", backend="tflite") as s:
        np.testing.assert_allclose(s.run(x), _torch(m, x), atol=1e-4)


class _WideLogits(nn.Module):
    """Class 9's logit sits 1000 below the rest: an int8 output tensor spends its whole range
    on that outlier and rounds the other nine logits together, so int8 top-1 collapses unless
    the classifier stays in float."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=3), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(4 * 4 * 4, 10)
        with torch.no_grad():
            self.head.bias[9] = -1000.0

    def forward(self, x):
        return self.head(self.stem(x))


def _budget_export(m, name: str, tmp_path: Path, n_eval: int):
    """int8 export of ``m`` (1x12x12) with a 10 pt budget, on held-out labels that are the
    fp32 model's own answers (so fp32 scores 100 %)."""
    from edgecnn.data.preprocess import preprocess_batch

    chw = (1, 12, 12)
    loaded = _loaded(m, name, chw)
    calib = _npz(tmp_path / "calib.npz", chw, n=32, seed=0)
    images = np.load(_npz(tmp_path / "ev0.npz", chw, n=n_eval, seed=1))["images"]
    labels = _torch(m, preprocess_batch(list(images), loaded.preprocess)).argmax(1)
    assert len(set(labels.tolist())) > 2  # the answers vary, so collapsing them costs top-1
    eval_spec = _npz(tmp_path / "ev.npz", chw, n=n_eval, seed=1, labels=labels)
    return export(loaded, tmp_path / name, "int8", calib=calib, calib_samples=32,
                  eval=eval_spec, max_accuracy_drop=10.0)


def test_accuracy_budget_leaves_layers_in_float(tmp_path):
    torch.manual_seed(0)
    art = _budget_export(_WideLogits().eval(), "wide", tmp_path, n_eval=48)
    acc = art.details["accuracy"]
    assert acc["fp32_top1"] == pytest.approx(100.0)
    first = [t for t in acc["trials"] if not t["float_layers"]]
    assert {t["observer"] for t in first} == {"minmax", "histogram"}  # both measured
    assert all(100.0 - t["top1"] > 10.0 for t in first)  # all-int8 misses the budget
    assert art.details["float_layers"] == ["head"]  # ranked most sensitive; floating it fixes it
    assert acc["top1_drop"] <= 10.0
    assert art.outputs[0].dtype == "float32" and art.outputs[0].quant is None
    assert art.inputs[0].dtype == "int8"  # the rest is still integer


class _OutlierTensor(nn.Module):
    """conv1's channel 0 is ~500 for every input and conv2 ignores it: int8 per-tensor
    quantization of that tensor (conv1's output and conv2's input) wipes out the other
    channels, and only leaving BOTH convs in float gets the accuracy back."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 4, 3, padding=1)  # 4 layers: the search may float up to 2
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, stride=3)
        self.head = nn.Linear(4 * 4 * 4, 10)
        with torch.no_grad():
            self.conv1.bias[0] = 500.0
            self.conv2.weight[:, 0] = 0.0

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(torch.relu(self.conv0(x))))))
        return self.head(x.flatten(1))


def test_accuracy_budget_searches_the_ranked_layers(tmp_path):
    torch.manual_seed(0)
    art = _budget_export(_OutlierTensor().eval(), "outlier", tmp_path, n_eval=64)
    acc, d = art.details["accuracy"], art.details
    assert all(100.0 - t["top1"] > 10.0 for t in acc["trials"] if not t["float_layers"])
    assert list(d["sensitivity"])[:2] in (["conv1", "conv2"], ["conv2", "conv1"])
    assert sorted(d["float_layers"]) == ["conv1", "conv2"]  # both ends of the tensor, no more
    searched = [len(t["float_layers"]) for t in acc["trials"] if t["float_layers"]]
    assert searched == [1, 2]  # doubling stops at the first prefix that meets the budget
    assert acc["top1_drop"] <= 10.0


# -- the zoo matrix --------------------------------------------------------------------------

ZOO = [i.name for i in list_models()]
SMALL = {"lenet5", "resnet8", "resnet20"}


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("name", ZOO)
def test_zoo_converts_and_runs(name, precision, tmp_path):
    torch.manual_seed(0)
    chw = get_model_info(name).test_size
    module = create_model(name, num_classes=10, in_chans=chw[0], img_size=chw[1]).eval()
    loaded = _loaded(module, name, chw)
    opts = {}
    if precision == "int8":
        opts = dict(calib=_npz(tmp_path / "calib.npz", chw, n=16), calib_samples=16,
                    parity_samples=4)
    art = export(loaded, tmp_path / name, precision, **opts)
    parity = art.details["parity"]
    assert parity["samples"] >= 1
    if precision != "int8":
        assert parity["tolerance"] is not None  # checked at export, ParityError otherwise
    x = np.random.default_rng(2).standard_normal((2, *chw)).astype(np.float32)
    with rt.load(tmp_path / name, backend="tflite", precision=precision) as s:
        y = s.run(x)
    assert y.shape == (2, 10) and np.all(np.isfinite(y))
    if precision == "fp32":
        np.testing.assert_allclose(y, _torch(module, x), rtol=1e-3,
                                   atol=1e-4 * max(1.0, float(np.abs(y).max())))
