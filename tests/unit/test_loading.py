"""load_model: zoo names, state dicts, checkpoints, factories, .pt2 programs, and refusals."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgecnn.bundle import sha256_file  # noqa: E402
from edgecnn.errors import ModelLoadError, UnknownModelError  # noqa: E402
from edgecnn.models import create_model  # noqa: E402
from edgecnn.models.loading import CHECKPOINT_FORMAT, load_model, parse_input_size  # noqa: E402


def _checkpoint(module, **over):
    ck = {"format": CHECKPOINT_FORMAT, "state_dict": module.state_dict(),
          "config": {"model": "lenet5", "num_classes": 3, "in_chans": 1, "img_size": 28},
          "preprocess": {"size": [28, 28], "channels": 1, "mean": [0.3], "std": [0.4],
                         "scale": 1 / 255, "channel_order": "L", "interpolation": "bilinear"},
          "labels": ["cat", "dog", "owl"], "metrics": {"top1": 0.5}, "epoch": 2}
    ck.update(over)
    return ck


def test_zoo_model_defaults():
    m = load_model("lenet5")
    assert m.name == "lenet5" and m.input_size == (1, 32, 32)
    assert m.labels == [f"class_{i}" for i in range(10)]
    assert m.preprocess.channels == 1 and m.preprocess.size == [32, 32]
    assert m.source["kind"] == "zoo" and "sha256" not in m.source
    assert not m.module.training


def test_zoo_model_input_size_and_classes():
    m = load_model("resnet8", input_size="3x32x32", num_classes=4)
    assert m.input_size == (3, 32, 32) and len(m.labels) == 4
    assert m.preprocess.channels == 3 and m.preprocess.mean == [0.485, 0.456, 0.406]
    assert m.module(torch.zeros(2, 3, 32, 32)).shape == (2, 4)


def test_unknown_model_suggests():
    with pytest.raises(UnknownModelError, match="did you mean.*resnet18"):
        load_model("resnet19")


def test_state_dict_weights_are_loaded(tmp_path):
    src = create_model("lenet5")
    path = tmp_path / "w.pt"
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, path)  # DataParallel
    m = load_model("lenet5", weights=path)
    for k, v in src.state_dict().items():
        assert torch.equal(m.module.state_dict()[k], v)
    assert m.source == {**m.source, "kind": "weights", "weights": "w.pt",
                        "sha256": sha256_file(path)}


def test_checkpoint_with_zoo_name_and_alone(tmp_path):
    src = create_model("lenet5", num_classes=3, img_size=28)
    path = tmp_path / "ck.pt"
    torch.save(_checkpoint(src), path)
    for m in (load_model("lenet5", weights=path), load_model(path)):
        assert m.labels == ["cat", "dog", "owl"]
        assert m.input_size == (1, 28, 28)
        assert m.preprocess.mean == [0.3]
        assert m.source["kind"] == "checkpoint" and m.source["sha256"] == sha256_file(path)
        assert torch.equal(m.module.state_dict()["features.0.weight"],
                           src.state_dict()["features.0.weight"])


def test_checkpoint_of_another_model(tmp_path):
    path = tmp_path / "ck.pt"
    torch.save(_checkpoint(create_model("lenet5", num_classes=3, img_size=28)), path)
    with pytest.raises(ModelLoadError, match="checkpoint of 'lenet5', not 'resnet8'"):
        load_model("resnet8", weights=path)


def test_plain_state_dict_alone_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(create_model("lenet5").state_dict(), path)
    with pytest.raises(ModelLoadError, match="does not say which model"):
        load_model(path)


def test_pickled_whole_model_is_refused(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(create_model("lenet5"), path)
    with pytest.raises(ModelLoadError, match=r"state_dict\(\)"):
        load_model("lenet5", weights=path)


@pytest.mark.parametrize("payload", [{"a": 1}, [1, 2, 3], {}])
def test_weights_that_are_not_a_state_dict(tmp_path, payload):
    path = tmp_path / "w.pt"
    torch.save(payload, path)
    with pytest.raises(ModelLoadError, match="not a state dict"):
        load_model("lenet5", weights=path)


def test_weights_file_that_is_not_torch(tmp_path):
    path = tmp_path / "w.pt"
    path.write_text("hello")
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        load_model("lenet5", weights=path)


def test_missing_weights_file(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model("lenet5", weights=tmp_path / "nope.pt")


def test_shape_mismatch_names_the_keys(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(create_model("lenet5", num_classes=10).state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"shape mismatches: classifier\.5\.weight \(10, 84\)"):
        load_model("lenet5", weights=path, num_classes=7)


def test_other_models_weights_name_missing_and_unexpected_keys(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(create_model("resnet8").state_dict(), path)
    with pytest.raises(ModelLoadError) as err:
        load_model("lenet5", weights=path)
    msg = str(err.value)
    assert "missing keys: features.0.weight" in msg and "unexpected keys" in msg and "more)" in msg


def test_factory(user_models):
    m = load_model("edgecnn_test_models:tiny_net", num_classes=6)
    assert m.name == "tiny_net" and m.input_size == (3, 16, 16) and len(m.labels) == 6
    assert m.source["kind"] == "factory"


def test_factory_needs_input_size(user_models):
    with pytest.raises(ModelLoadError, match="--input-size"):
        load_model("edgecnn_test_models:tiny_gray")
    m = load_model("edgecnn_test_models:tiny_gray", input_size="1x20x20")
    assert m.input_size == (1, 20, 20) and m.preprocess.channels == 1 and len(m.labels) == 4


@pytest.mark.parametrize("spec,exc,match", [
    ("edgecnn_test_models:not_a_module", ModelLoadError, "not a torch.nn.Module"),
    ("edgecnn_test_models:broken", ModelLoadError, "factory exploded"),
    ("edgecnn_test_models:missing", UnknownModelError, "has no attribute"),
    ("no_such_pkg_xyz.models:net", UnknownModelError, "cannot import"),
])
def test_bad_factories(user_models, spec, exc, match):
    with pytest.raises(exc, match=match):
        load_model(spec)


def test_factory_wrong_input_size(user_models):
    with pytest.raises(ModelLoadError, match="does not run on input 3x16x16"):
        load_model("edgecnn_test_models:tiny_gray", input_size="3x16x16")


@pytest.mark.parametrize("dynamic", [True, False])
def test_pt2_program(tmp_path, user_models, dynamic):
    import edgecnn_test_models as um

    net = um.tiny_net().eval()
    shapes = ({0: torch.export.Dim("batch")},) if dynamic else None
    ep = torch.export.export(net, (torch.randn(2, 3, 16, 16),), dynamic_shapes=shapes)
    path = tmp_path / "net.pt2"
    torch.export.save(ep, path)
    m = load_model(path)
    assert m.input_size == (3, 16, 16) and len(m.labels) == 5
    assert m.source["kind"] == "pt2" and m.source["sha256"] == sha256_file(path)
    assert m.source.get("fixed_batch") == (None if dynamic else 2)
    with pytest.raises(ModelLoadError, match="exported for input 3x16x16"):
        load_model(path, input_size="3x32x32")


def test_pt2_missing(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "gone.pt2")


@pytest.mark.parametrize("text", ["3x224", "axbxc", "0x2x2", "4x8x8"])
def test_parse_input_size_rejects(text):
    with pytest.raises(ModelLoadError):
        parse_input_size(text)


def test_parse_input_size_accepts():
    assert parse_input_size("3x224x224") == (3, 224, 224)
    assert parse_input_size("1,28,28") == (1, 28, 28)
    assert parse_input_size((3, 8, 8)) == (3, 8, 8)
    assert parse_input_size(None) is None
