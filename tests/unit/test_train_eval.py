"""edgecnn train / eval / demo on tiny real data; the trained weights against their ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from edgecnn.cli.main import cli  # noqa: E402
from edgecnn.errors import EdgeCNNError, ModelLoadError  # noqa: E402
from edgecnn.manifest import Preprocess  # noqa: E402
from edgecnn.models.checkpoint import CHECKPOINT_FORMAT, read_checkpoint  # noqa: E402
from edgecnn.train import TrainConfig, _Normalize, augment_uint8, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FMNIST = Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")


def _toy_npz(path: Path, n: int = 240, seed: int = 0) -> Path:
    """Three classes a tiny CNN separates in a few steps, and that survive flips and crops:
    bright top band, bright bottom band, bright middle band (plus noise)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, y in enumerate(labels):
        rows = {0: slice(2, 9), 1: slice(19, 26), 2: slice(11, 17)}[int(y)]
        images[i, rows, 3:25] = 230
    np.savez(path, images=images, labels=labels, classes=np.array(["top", "bottom", "middle"]))
    return path


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return _toy_npz(tmp_path_factory.mktemp("toy") / "toy.npz")


def _cfg(toy, out, **kw) -> TrainConfig:
    base = dict(model="lenet5", data=str(toy), out=out, epochs=2, batch_size=32,
                optimizer="adamw", lr=3e-3, threads=1, test=str(toy))
    base.update(kw)
    return TrainConfig(**base)


def _quiet(_msg: str) -> None:
    pass


def test_train_writes_checkpoints_that_learn(toy, tmp_path):
    result = train(_cfg(toy, tmp_path / "run", epochs=3), progress=False, log=_quiet)
    assert result.best_val_top1 >= 90.0 and result.test_top1 >= 90.0
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"best.pt", "last.pt", "history.json"}
    best = torch.load(result.best_path, weights_only=True)
    assert best["format"] == CHECKPOINT_FORMAT
    assert set(best) == {"format", "state_dict", "config", "preprocess", "labels", "metrics", "epoch"}
    assert best["config"] == {"model": "lenet5", "num_classes": 3, "in_chans": 1, "img_size": 32}
    assert best["labels"] == ["top", "bottom", "middle"]
    pre = Preprocess.from_dict(best["preprocess"])
    assert pre.size == [32, 32] and pre.channels == 1
    assert best["metrics"]["test_top1"] == pytest.approx(result.test_top1, abs=1e-3)
    last = torch.load(result.last_path, weights_only=True)
    assert last["epoch"] == 3 and "optimizer" in last["train_state"]
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_same_seed_gives_the_same_weights(toy, tmp_path):
    runs = [train(_cfg(toy, tmp_path / f"r{i}", epochs=1, seed=s, test=None),
                  progress=False, log=_quiet) for i, s in enumerate((7, 7, 8))]
    states = [torch.load(r.last_path, weights_only=True)["state_dict"] for r in runs]
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


class _Stop(Exception):
    pass


def test_resume_continues_exactly(toy, tmp_path):
    full = train(_cfg(toy, tmp_path / "full", test=None), progress=False, log=_quiet)

    def stop_after_first_epoch(msg: str) -> None:
        if msg.startswith("epoch 1/"):
            raise _Stop

    with pytest.raises(_Stop):
        train(_cfg(toy, tmp_path / "cut", test=None), progress=False, log=stop_after_first_epoch)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    resumed = train(_cfg(toy, tmp_path / "cut", test=None, resume=True), progress=False, log=_quiet)
    a = torch.load(full.last_path, weights_only=True)["state_dict"]
    b = torch.load(resumed.last_path, weights_only=True)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert [h.epoch for h in resumed.history] == [1, 2]


def test_resume_errors(toy, tmp_path):
    with pytest.raises(ModelLoadError, match="last.pt does not exist"):
        train(_cfg(toy, tmp_path / "none", resume=True), progress=False, log=_quiet)
    train(_cfg(toy, tmp_path / "r", epochs=1, test=None), progress=False, log=_quiet)
    with pytest.raises(ModelLoadError, match="settings differ.*lr 0.003 -> 0.01"):
        train(_cfg(toy, tmp_path / "r", epochs=1, lr=0.01, resume=True), progress=False, log=_quiet)


def test_bad_settings():
    with pytest.raises(EdgeCNNError, match="augment must be one of"):
        TrainConfig(model="lenet5", augment="rotate")
    with pytest.raises(EdgeCNNError, match="epochs must be >= 1"):
        TrainConfig(model="lenet5", epochs=0)


def test_augment_and_normalize_match_the_preprocess():
    from edgecnn.data.preprocess import grayscale_preprocess, normalize_uint8

    x = torch.arange(2 * 28 * 28, dtype=torch.int64).remainder(256).to(torch.uint8).view(2, 1, 28, 28)
    flipped = augment_uint8(x, "flip", torch.Generator().manual_seed(0))
    assert flipped.dtype == torch.uint8
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(2)) for f, o in zip(flipped, x))
    a = augment_uint8(x, "crop+flip", torch.Generator().manual_seed(1))
    b = augment_uint8(x, "crop+flip", torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)
    spec = grayscale_preprocess((28, 28))
    ours = _Normalize(spec)(x).numpy()
    ref = normalize_uint8(x[:, 0].numpy(), spec)
    assert np.allclose(ours, ref, atol=1e-6)


def test_cli_train_then_eval_checkpoint_and_bundle(toy, tmp_path):
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    runner = CliRunner()
    res = runner.invoke(cli, ["train", "lenet5", "--data", str(toy), "--epochs", "2",
                              "--batch-size", "32", "--optimizer", "adamw", "--lr", "0.003",
                              "--threads", "1", "--out", str(tmp_path / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "best: " in res.output and "val top-1" in res.output
    ckpt = tmp_path / "run" / "best.pt"

    res = runner.invoke(cli, ["eval", str(ckpt), "--data", str(toy), "--out",
                              str(tmp_path / "ev"), "--json", "--no-progress"])
    assert res.exit_code == 0, res.output
    torch_result = json.loads(res.output)
    assert torch_result["target"] == "pytorch:fp32" and torch_result["n"] == 240
    assert Path(torch_result["confusion_png"]).read_bytes()[:4] == b"\x89PNG"

    export(str(ckpt), ExportOptions(target="onnx", out=tmp_path / "bundle"), log=None)
    res = runner.invoke(cli, ["eval", str(tmp_path / "bundle"), "--data", str(toy), "--out",
                              str(tmp_path / "ev"), "--json", "--no-progress", "--threads", "1"])
    assert res.exit_code == 0, res.output
    ort_result = json.loads(res.output)
    assert ort_result["target"] == "onnxruntime:fp32"
    assert ort_result["top1"] == pytest.approx(torch_result["top1"], abs=0.5)
    assert np.abs(np.array(ort_result["confusion"]) - np.array(torch_result["confusion"])).sum() <= 2

    res = runner.invoke(cli, ["eval", str(tmp_path / "bundle"), "--data", str(toy),
                              "--precision", "int8", "--no-progress"])
    assert res.exit_code == 1 and "no artifact" in res.output


def test_eval_errors_are_one_line(tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["eval", str(tmp_path / "missing.pt"), "--data", "fashion-mnist:test"])
    assert res.exit_code == 1
    assert "Error:" in res.output and "Traceback" not in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = runner.invoke(cli, ["eval", "lenet5", "--data", str(empty)])
    assert res.exit_code == 1 and "no class subfolders" in res.output


# -- the committed trained weights (real Fashion-MNIST) ------------------------------------
def _trained_weights() -> Path:
    for name in ("resnet8_fmnist.pt", "lenet5_fmnist.pt"):
        if (ROOT / "weights" / name).is_file():
            return ROOT / "weights" / name
    pytest.skip("no trained weights in weights/ (see weights/README.md)")


@pytest.mark.data
@pytest.mark.skipif(not FMNIST.is_file(), reason="Fashion-MNIST not installed "
                    "(sudo apt-get install dataset-fashion-mnist)")
@pytest.mark.parametrize("name", ["lenet5_fmnist.pt", "resnet8_fmnist.pt"])
def test_trained_weights_onnx_accuracy_matches_pytorch(name, tmp_path):
    from edgecnn.options import ExportOptions
    from edgecnn.bench.accuracy import evaluate, load_predictor
    from edgecnn.data.datasets import load_dataset
    from edgecnn.pipeline import export

    weights = ROOT / "weights" / name
    if not weights.is_file():
        pytest.skip(f"weights/{name} is not there (see weights/README.md)")
    data = load_dataset("fashion-mnist:test").subset(1000, seed=0)
    export(str(weights), ExportOptions(target="onnx", out=tmp_path / "b"), log=None)
    results = {}
    for key, (model, backend) in {"torch": (str(weights), None),
                                  "ort": (str(tmp_path / "b"), "onnxruntime")}.items():
        p = load_predictor(model, backend=backend, threads=2)
        results[key] = evaluate(p.predict_fn, data, p.preprocess, batch_size=500, progress=False)
        p.close()
    assert results["torch"].top1 > 85.0  # it is a trained model, not a random one
    assert abs(results["ort"].top1 - results["torch"].top1) <= 0.1
    assert results["ort"].agreement(results["torch"]) >= 99.8


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not FMNIST.is_file(), reason="Fashion-MNIST not installed")
def test_demo_runs_end_to_end(tmp_path):
    weights = _trained_weights()
    res = CliRunner().invoke(cli, ["demo", "--weights", str(weights), "--samples", "500",
                                   "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    assert "ONNX Runtime" in res.output and "PyTorch" in res.output and "LiteRT" in res.output
    # every CPU target really ran: an optional target that fails prints "skipped: <why>" (the
    # TensorRT plan's "constant folding skipped" note is not a skipped target)
    assert not [ln for ln in res.output.splitlines() if ln.strip().startswith("skipped:")], \
        res.output
    assert len(list((tmp_path / "demo-samples").glob("*.png"))) == 4
    assert (tmp_path / "demo" / "manifest.json").is_file()
