"""Bring your own model from the command line: factories from a file or the current folder with
--model-arg, --labels and the built-in ImageNet names, preprocessing flags into the bundle, and
one-line errors for every bad value. One TinyNet export (16x16); the rest fails or loads only."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn.cli.main import cli
from edgecnn.labels import builtin, class_indices, read_labels

FACTORY = textwrap.dedent('''
    import torch.nn as nn


    def build(width=8, num_classes=3, bias=True):
        net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=bias), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(width, num_classes))
        net.input_size = (3, 16, 16)
        return net


    def imagenet_head(num_classes=1000):
        return build(width=4, num_classes=num_classes)
''')


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _one_line_error(result, match):
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert "Traceback" not in result.output and lines[-1].startswith("Error: "), result.output
    assert match in lines[-1], lines[-1]


@pytest.fixture
def factory_dir(tmp_path, monkeypatch):
    """A user's folder holding byom_models_<test>.py, as the current folder."""
    name = f"byom_models_{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    return tmp_path, name


def test_factory_from_a_file_path_and_from_the_current_folder_with_model_args(factory_dir):
    pytest.importorskip("torch")
    from edgecnn.model_setup import ModelSetup, parse_model_args
    from edgecnn.models.loading import load_model

    _, name = factory_dir
    args = parse_model_args(["width=4", "bias=False", "num_classes=7"])
    assert args == {"width": 4, "bias": False, "num_classes": 7}
    by_path = load_model(f"./{name}.py:build", setup=ModelSetup(model_args=args))
    assert by_path.module[0].out_channels == 4 and by_path.module[0].bias is None
    assert len(by_path.labels) == 7 and by_path.source["model_args"]["width"] == "4"
    by_module = load_model(f"{name}:build")  # the current folder is importable
    assert by_module.module[0].out_channels == 8 and by_module.input_size == (3, 16, 16)


@pytest.mark.parametrize("args, match", [
    (["./nope_models.py:build"], "does not exist"),
    (["nope_models_xyz:build"], "no such module"),
    (["{file}:build", "--model-arg", "depth=3"], "takes no argument 'depth'"),
    (["{file}:build", "--model-arg", "width"], "KEY=VALUE"),
    (["{file}:build", "--model-arg", "width=abc"], "failed: TypeError"),
    (["lenet5", "--model-arg", "width=2"], "applies to module:callable factories"),
    (["{file}:build", "--labels", "{labels3}"], "hold 2 names but the model has 3 classes"),
    (["{file}:build", "--labels", "missing.txt"], "does not exist"),
    (["{file}:build", "--preset", "caffe"], "unknown preset 'caffe'"),
    (["{file}:build", "--resize", "256", "--crop", "300"], "larger than the resize"),
    (["{file}:build", "--mean", "0.5,0.5"], "--mean"),
    (["{file}:build", "--mean", "0.5,0.5,0.5", "--std", "0.2,0.2"], "--std"),
    (["{file}:build", "--resize", "20x"], "--resize"),
    (["{file}:build", "--preset", "imagenet"], "--crop 16x16"),
    (["{file}:build", "--scale", "1/0"], "--scale"),
])
def test_bad_values_are_one_line_errors(factory_dir, args, match):
    pytest.importorskip("torch")
    folder, name = factory_dir
    (folder / "two.txt").write_text("cat\ndog\n")
    args = [a.format(file=f"./{name}.py", labels3=str(folder / "two.txt")) for a in args]
    _one_line_error(_run("export", *args, "--out", str(folder / "bundle")), match)
    assert not (folder / "bundle").exists()


def test_label_files_in_every_form(tmp_path):
    (tmp_path / "a.txt").write_text("cat\n\ndog\n")
    (tmp_path / "b.json").write_text(json.dumps(["cat", "dog"]))
    (tmp_path / "c.json").write_text(json.dumps({"1": "dog", "0": "cat"}))
    (tmp_path / "d.json").write_text(json.dumps({"names": ["cat", "dog"],
                                                 "wnids": ["n02121808", "n02084071"]}))
    for f in ("a.txt", "b.json", "c.json", "d.json"):
        assert read_labels(str(tmp_path / f)).names == ("cat", "dog"), f
    (tmp_path / "e.txt").write_text("cat\ncat\n")
    (tmp_path / "f.json").write_text("{not json")
    for f, match in (("e.txt", "twice"), ("f.json", "not valid JSON")):
        with pytest.raises(Exception, match=match):
            read_labels(str(tmp_path / f))


def test_builtin_imagenet_names_and_folder_mapping():
    net = builtin("imagenet")
    assert len(net.names) == len(set(net.names)) == 1000 == len(net.wnids)
    assert net.names[0] == "tench" and net.names[652] == "military uniform"
    assert list(net.wnids) == sorted(net.wnids) and net.wnids[0] == "n01440764"
    assert class_indices(["n01440764", "n01443537"], list(net.names)) == [0, 1]
    assert class_indices(["17", "3"], list(net.names)) == [17, 3]
    assert class_indices(["goldfish", "tench"], list(net.names)) == [1, 0]
    assert class_indices(["n99999999"], list(net.names)) is None


def test_flags_reach_the_bundle_predict_and_info(factory_dir):
    pytest.importorskip("onnxscript")
    folder, name = factory_dir
    (folder / "labels.txt").write_text("red\ngreen\nblue\n")
    out = folder / "bundle"
    res = _run("export", f"./{name}.py:build", "--model-arg", "width=4", "--resize", "20",
               "--crop", "16", "--mean", "0.5", "--std", "0.25", "--bgr", "--labels",
               str(folder / "labels.txt"), "--out", str(out), "--quiet")
    assert res.exit_code == 0, res.output
    m = json.loads((out / "manifest.json").read_text())
    assert m["schema_version"] == 2 and m["labels"] == ["red", "green", "blue"]
    pre = m["preprocess"]
    assert (pre["resize"], pre["crop"], pre["mean"], pre["std"], pre["channel_order"]) == (
        [20], [16, 16], [0.5] * 3, [0.25] * 3, "BGR")
    assert m["source"]["labels"] == "labels.txt" and m["source"]["model_args"] == {"width": "4"}
    Image.fromarray(np.full((30, 40, 3), (200, 30, 30), np.uint8)).save(folder / "img.png")
    res = _run("predict", str(out), str(folder / "img.png"))
    assert res.exit_code == 0 and any(n in res.output for n in ("red", "green", "blue")), res.output
    res = _run("info", str(out))
    assert "resize shorter side to 20, center crop 16x16" in res.output, res.output
    (folder / "data" / "red").mkdir(parents=True)
    (folder / "img.png").rename(folder / "data" / "red" / "img.png")
    res = _run("eval", str(out), "--data", str(folder / "data"), "--preset", "imagenet")
    _one_line_error(res, "a bundle holds its own preprocessing")


def test_eval_maps_wnid_folders_onto_imagenet_classes(factory_dir):
    pytest.importorskip("torch")
    folder, name = factory_dir
    data = folder / "val"
    for wnid in ("n01440764", "n01443537"):
        (data / wnid).mkdir(parents=True)
        Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(data / wnid / "x.png")
    res = _run("eval", f"{name}:imagenet_head", "--data", str(data), "--labels", "imagenet",
               "--resize", "18", "--crop", "16", "--json", "--no-progress",
               "--out", str(folder / "eval"))
    assert res.exit_code == 0, res.output
    record = json.loads(res.output[res.output.index("{"):])
    assert record["n"] == 2 and len(record["per_class"]) == 1000
    assert record["per_class"]["tench"] is not None and record["per_class"]["goldfish"] is not None


def test_torchvision_free_routes_pt2_and_a_state_dict_into_a_file_factory(factory_dir):
    """Two of the README's routes for torchvision users: a .pt2 program and a state dict loaded
    into an architecture defined in the user's own file, each with preset, crop and labels."""
    torch = pytest.importorskip("torch")
    from edgecnn.labels import read_labels
    from edgecnn.model_setup import ModelSetup
    from edgecnn.models.loading import load_model
    from edgecnn.presets import PreprocessRequest

    folder, name = factory_dir
    (folder / "labels.json").write_text(json.dumps(["red", "green", "blue"]))
    setup = ModelSetup(preprocess=PreprocessRequest(preset="imagenet", resize=(20,), crop=(16, 16)),
                       labels=read_labels(str(folder / "labels.json")))
    first = load_model(f"./{name}.py:build")
    torch.save(first.module.state_dict(), folder / "state.pt")
    program = torch.export.export(first.module, (torch.randn(2, 3, 16, 16),),
                                  dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, str(folder / "model.pt2"))
    x = torch.randn(2, 3, 16, 16)
    for spec, weights in ((f"./{name}.py:build", folder / "state.pt"), ("model.pt2", None)):
        loaded = load_model(spec, weights=weights, setup=setup)
        assert loaded.labels == ["red", "green", "blue"]
        assert (loaded.preprocess.resize, loaded.preprocess.crop) == ([20], [16, 16])
        assert loaded.preprocess.mean == pytest.approx([0.485, 0.456, 0.406])
        with torch.no_grad():
            torch.testing.assert_close(loaded.module(x), first.module(x))
