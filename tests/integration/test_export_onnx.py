"""torch -> ONNX export through the pipeline: graph hygiene, parity, bundles, every zoo model."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402

from edgecnn.bundle import Bundle, sha256_file  # noqa: E402
from edgecnn.errors import BundleError, ParityError  # noqa: E402
from edgecnn.export.onnx import export_onnx, op_counts  # noqa: E402
from edgecnn.export.parity import ParityTolerance, compare_outputs  # noqa: E402
from edgecnn.options import ExportOptions  # noqa: E402
from edgecnn.pipeline import export  # noqa: E402
from edgecnn.models import list_models  # noqa: E402
from edgecnn.models.loading import load_model  # noqa: E402

SLOW = {"vgg16", "vit_base_16", "alexnet", "vgg11", "resnet50"}


def test_graph_is_clean_and_named(tiny_bundle_session):
    proto = onnx.load(str(tiny_bundle_session / "model.onnx"))
    onnx.checker.check_model(proto)
    ops = op_counts(proto)
    assert ops["Conv"] == 2
    assert "BatchNormalization" not in ops and "Dropout" not in ops  # folded / removed
    assert [i.name for i in proto.graph.input] == ["input"]
    assert [o.name for o in proto.graph.output] == ["logits"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert max(o.version for o in proto.opset_import if o.domain == "") >= 18


def test_parity_report_is_stored(tiny_bundle_session):
    a = Bundle.open(tiny_bundle_session).find("onnxruntime", "fp32")
    par = a.details["parity"]
    assert par["samples"] == 9 and par["batch_sizes"] == [8, 1]
    assert par["max_abs_diff"] <= 1e-4 * max(1.0, par["ref_max_abs"])
    assert par["cosine"] >= 0.9999 and par["top1_agreement"] == 1.0
    assert a.details["export"]["training_ops"] == {}


def test_compare_outputs_numbers():
    ref = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    rep = compare_outputs(ref, ref + np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 2.0]]))
    assert rep.max_abs_diff == 2.0 and rep.mean_abs_diff == pytest.approx(2.5 / 6)
    assert rep.top1_agreement == 0.5 and rep.ref_max_abs == 3.0
    assert rep.cosine == pytest.approx(1 / np.sqrt(5))
    assert not rep.passed() and rep.passed(ParityTolerance(1.0, 0.0, 0.5))
    assert compare_outputs(ref, ref).passed()


def test_parity_failure_keeps_the_old_bundle(user_models, tmp_path):
    out = tmp_path / "b"
    export("edgecnn_test_models:tiny_net", ExportOptions(out=out), log=None)
    before = (out / "manifest.json").read_bytes(), sha256_file(out / "model.onnx")
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        export("edgecnn_test_models:noisy", ExportOptions(out=out), log=None)
    assert ((out / "manifest.json").read_bytes(), sha256_file(out / "model.onnx")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging folder left


def test_same_model_keeps_other_artifacts_other_model_starts_fresh(user_models, tiny_bundle):
    from edgecnn.bundle import BundleWriter

    manifest = Bundle.open(tiny_bundle).manifest
    with BundleWriter(tiny_bundle, manifest) as w:  # an extra file, as another backend would add
        w.write_text("notes.txt", "kept")
    msgs = []
    res = export("edgecnn_test_models:tiny_net", ExportOptions(out=tiny_bundle), log=msgs.append)
    assert (tiny_bundle / "notes.txt").is_file()
    assert any("keeping its other artifacts" in m for m in msgs) and res.messages == msgs
    export("edgecnn_test_models:tiny_net", ExportOptions(out=tiny_bundle, num_classes=3), log=None)
    assert not (tiny_bundle / "notes.txt").exists()
    assert Bundle.open(tiny_bundle).manifest.num_classes == 3


def test_unwritable_output_fails_before_exporting(user_models, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(BundleError, match="is a file"):
        export("edgecnn_test_models:tiny_net", ExportOptions(out=blocker / "bundle"), log=None)


def test_default_out_is_bundles_model_name(user_models, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = export("edgecnn_test_models:tiny_net", ExportOptions(parity_samples=2), log=None)
    assert res.bundle == tmp_path / "bundles" / "tiny_net" or \
        res.bundle.resolve() == (tmp_path / "bundles" / "tiny_net").resolve()
    assert res.parity.batch_sizes == [2, 1]


def test_checkpoint_export_carries_labels_and_preprocess(tmp_path):
    from edgecnn.models import create_model
    from edgecnn.models.loading import CHECKPOINT_FORMAT

    net = create_model("lenet5", num_classes=3, img_size=28)
    ck = tmp_path / "ck.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "state_dict": net.state_dict(),
                "config": {"model": "lenet5", "num_classes": 3, "in_chans": 1, "img_size": 28},
                "preprocess": {"size": [28, 28], "channels": 1, "mean": [0.3], "std": [0.4],
                               "scale": 1 / 255, "channel_order": "L", "interpolation": "bilinear"},
                "labels": ["a", "b", "c"], "metrics": {}, "epoch": 1}, ck)
    res = export(str(ck), ExportOptions(out=tmp_path / "b"), log=None)
    m = Bundle.open(res.bundle).manifest
    assert m.model == "lenet5" and m.labels == ["a", "b", "c"] and m.preprocess.mean == [0.3]
    assert m.source["kind"] == "checkpoint" and m.source["sha256"] == sha256_file(ck)


@pytest.mark.parametrize("dynamic", [True, False])
def test_pt2_export(user_models, tmp_path, dynamic):
    import edgecnn_test_models as um

    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    ep = torch.export.export(um.tiny_net().eval(), (torch.randn(2, 3, 16, 16),),
                             dynamic_shapes=shapes)
    torch.export.save(ep, tmp_path / "net.pt2")
    res = export(str(tmp_path / "net.pt2"), ExportOptions(out=tmp_path / "b", parity_samples=4),
                 log=None)
    spec = res.artifacts[0].inputs[0]
    assert spec.shape == ([-1, 3, 16, 16] if dynamic else [2, 3, 16, 16])
    assert res.parity.batch_sizes == ([4, 1] if dynamic else [2, 2])


def test_export_onnx_fixed_batch_and_opset(user_models, tmp_path):
    import edgecnn_test_models as um

    info = export_onnx(um.tiny_net(), (3, 16, 16), tmp_path / "m.onnx", opset=18,
                       dynamic_batch=False, batch=3)
    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert info.opset == 18 and info.batch == 3 and not info.dynamic_batch
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 3


def _zoo_params():
    return [pytest.param(i.name, marks=pytest.mark.slow) if i.name in SLOW else i.name
            for i in list_models()]


@pytest.mark.parametrize("name", _zoo_params())
def test_zoo_model_exports_with_parity(name, tmp_path):
    from edgecnn.models import get_model_info

    size = get_model_info(name).test_size
    loaded = load_model(name, input_size=size)
    res = export(loaded, ExportOptions(out=tmp_path / name, parity_samples=2), log=None)
    info = res.onnx
    assert info.training_ops == {}, info.training_ops  # BatchNorm folded, Dropout gone
    assert info.dynamic_batch and info.size_bytes < 2**31
    assert res.parity.passed("fp32") and res.parity.batch_sizes == [2, 1]
    Bundle.open(res.bundle).verify()
