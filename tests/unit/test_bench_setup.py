"""``edgecnn bench MODEL`` with the model-setup flags (--preset --resize --crop --mean --std
--scale --bgr --interpolation --labels --model-arg): the bundle bench writes carries the stated
preprocessing and labels, the torch target loads the same model (factory arguments) and scores
the accuracy data with the same preprocessing, bad values and BUNDLE + flags are one-line
errors before anything is written.

Cost: one 16x16 factory export and two tiny worker processes (about 15 s on 2 cores); the error
cases load at most the factory.
"""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli.main import cli

# ``width`` has no default: a torch worker that did not get --model-arg fails to build it
FACTORY = textwrap.dedent('''
    import torch.nn as nn


    def build(width, num_classes=3):
        net = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(width, num_classes))
        net.input_size = (3, 16, 16)
        return net
''')
STATED = ["--model-arg", "width=4", "--resize", "20", "--crop", "16", "--mean", "0.5",
          "--std", "0.25", "--bgr", "--interpolation", "nearest"]
FAST = ["--warmup", "1", "--iterations", "3", "--no-plot"]


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _one_line_error(result, match, code=1):
    assert result.exit_code == code, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert "Traceback" not in result.output and lines[-1].startswith("Error: "), result.output
    assert match in result.output, result.output


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A user's folder with a model file, a labels file and labelled 24x30 RGB photos."""
    (tmp_path / "bench_setup_models.py").write_text(FACTORY)
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    (tmp_path / "two.txt").write_text("red\ngreen\n")
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (24, 24, 30, 3), dtype=np.uint8)
    np.savez(tmp_path / "photos.npz", images=images, labels=np.arange(24) % 3,
             classes=np.array(["red", "green", "blue"]))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bench_exports_and_runs_torch_with_the_stated_setup(user_folder):
    pytest.importorskip("onnxscript")
    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.cli.model_options import build_setup
    from edgecnn.data.datasets import load_dataset

    f = user_folder
    res = _run("bench", "./bench_setup_models.py:build", *STATED, "--labels", "labels.txt",
               "--targets", "torch,onnx:fp32", "--data", "photos.npz", "--out", f / "bundle",
               "--report-dir", f / "report", "--db", f / "bench.db", *FAST)
    assert res.exit_code == 0, res.output
    m = json.loads((f / "bundle" / "manifest.json").read_text())
    pre = m["preprocess"]
    assert (pre["resize"], pre["crop"], pre["mean"], pre["std"], pre["channel_order"],
            pre["interpolation"]) == ([20], [16, 16], [0.5] * 3, [0.25] * 3, "BGR", "nearest")
    assert m["labels"] == ["red", "green", "blue"]
    assert m["source"]["model_args"] == {"width": "4"} and m["source"]["labels"] == "labels.txt"

    report = json.loads((f / "report" / "bench.json").read_text())
    rows = {r["target"]: r for r in report["results"]}
    assert rows["torch"]["status"] == "ok", rows["torch"]  # width=4 reached the worker
    assert rows["onnx:fp32"]["status"] == "ok", rows["onnx:fp32"]
    assert report["options"]["setup"]["preprocess"]["crop"] == [16, 16]
    # the torch target scored the photos with the stated preprocessing: the same top-1 as the
    # same model fed through that preprocessing here, and the fp32 bundle agrees with it
    setup = build_setup(resize="20", crop="16", mean="0.5", std="0.25", bgr=True,
                        interpolation="nearest", labels="labels.txt", model_arg=("width=4",))
    here = load_predictor("./bench_setup_models.py:build", seed=0, setup=setup)
    assert here.preprocess.crop == [16, 16] and here.preprocess.channel_order == "BGR"
    expect = evaluate(here.predict_fn, load_dataset("photos.npz"), here.preprocess,
                      progress=False)
    assert rows["torch"]["top1"] == pytest.approx(expect.top1) and rows["torch"]["eval_n"] == 24
    assert rows["onnx:fp32"]["agreement"] == 100.0


@pytest.mark.parametrize("args, match", [
    (["--preset", "caffe"], "unknown preset 'caffe'"),
    (["--resize", "256", "--crop", "300"], "larger than the resize"),
    (["--mean", "0.5,0.5"], "--mean"),
    (["--mean", "0.5,0.5,0.5", "--std", "0.2,0.2"], "--std"),
    (["--crop", "16x"], "--crop"),
    (["--scale", "1/0"], "--scale"),
    (["--interpolation", "lanczos"], "unknown interpolation"),
    (["--labels", "two.txt"], "hold 2 names but the model has 3 classes"),
    (["--labels", "missing.txt"], "does not exist"),
    (["--model-arg", "width"], "KEY=VALUE"),
    (["--preset", "imagenet"], "--crop 16x16"),
])
def test_bad_setup_values_are_one_line_errors_before_any_work(user_folder, args, match):
    pytest.importorskip("torch")
    f = user_folder
    res = _run("bench", "./bench_setup_models.py:build", "--model-arg", "width=4", *args,
               "--targets", "onnx:fp32", "--out", f / "bundle", "--report-dir", f / "report",
               "--db", f / "bench.db", *FAST)
    _one_line_error(res, match)
    assert not any((f / p).exists() for p in ("bundle", "report", "bench.db"))


def test_a_bundle_with_setup_flags_is_an_error(tiny_bundle, tmp_path):
    before = (tiny_bundle / "manifest.json").read_text()
    for extra in ([], ["--cluster", "auto", "--devices", "x86-cpu"]):
        res = _run("bench", tiny_bundle, "--preset", "imagenet", "--targets", "onnx:fp32",
                   "--report-dir", tmp_path / "report", "--db", tmp_path / "bench.db", *FAST,
                   *extra)
        _one_line_error(res, "its manifest already fixes preprocessing")
    res = _run("bench", "--compare", "latest", "--labels", "imagenet", "--db", tmp_path / "h.db")
    _one_line_error(res, "need a MODEL", code=2)
    assert (tiny_bundle / "manifest.json").read_text() == before
    assert not any((tmp_path / p).exists() for p in ("report", "bench.db", "h.db"))
