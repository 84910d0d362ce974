"""Several targets and precisions in one export: the same artifacts as one export per target,
the shared steps (model.onnx, calibration set, reference outputs) done once, and every invalid
combination refused in one line before any work.

Cost in ``make test``: an estimated 60-90 s on 2 free cores (lenet5: one 4-artifact export and
the three separate exports it is compared with, two of them TFLite int8 conversions; the fixture
took 12 min on a machine at load 6-12 shared with four other jobs). Mark the two fixture tests
slow if that is too much for CI.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("litert_torch", reason="needs litert-torch (pip install 'edgecnn[tflite]')")
pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install 'edgecnn[litert]')")

from click.testing import CliRunner  # noqa: E402

from edgecnn.cli.main import cli  # noqa: E402
from edgecnn.export import ExportOptions, export  # noqa: E402

CALIB = ["--calib", "fashion-mnist:train", "--calib-samples", "16", "--parity-samples", "4"]
# files whose bytes depend only on the weights, the inputs and the calibration samples
DETERMINISTIC = ("model.onnx", "model.int8.cpu.onnx", "model.int8.onnx", "model.fp32.tflite",
                 "model.int8.tflite", "calibration.minmax.json")


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _keys(manifest: dict) -> dict[tuple, str]:
    """(backend, precision, variant) -> sha256 of every artifact."""
    return {(a["backend"], a["precision"], (a.get("details") or {}).get("shaped_for")): a["sha256"]
            for a in manifest["artifacts"]}


def _cli(*args: str):
    return CliRunner().invoke(cli, ["export", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def one_and_separate(tmp_path_factory):
    import torch

    from edgecnn.models import create_model

    root = tmp_path_factory.mktemp("multi")
    weights = root / "lenet5.pt"  # the same weights for every export (a zoo model's are random)
    torch.manual_seed(0)
    torch.save(create_model("lenet5").state_dict(), weights)
    one = export("lenet5", ExportOptions(target=["onnx", "tflite"], precision="fp32,int8",
                                         out=root / "one", weights=str(weights),
                                         calib="fashion-mnist:train", calib_samples=16,
                                         parity_samples=4), log=None)
    separate = {}
    for target, precision in (("onnx", "int8"), ("tflite", "fp32"), ("tflite", "int8")):
        out = root / f"{target}-{precision}"
        res = _cli("lenet5", "--weights", str(weights), "--target", target, "--precision",
                   precision, "--out", str(out), *CALIB)
        assert res.exit_code == 0, res.output
        separate[(target, precision)] = out
    return one, separate


def test_one_command_writes_what_separate_commands_write(one_and_separate):
    one, separate = one_and_separate
    got = _keys(_manifest(one.bundle))
    want: dict[tuple, str] = {}
    for out in separate.values():
        want.update(_keys(_manifest(out)))
    assert sorted(got) == sorted(want)  # same artifacts: onnx fp32, both int8 graphs, 2 tflite
    assert one.jobs == ["onnxruntime:fp32", "onnxruntime:int8", "tflite:fp32", "tflite:int8"]
    for name in DETERMINISTIC:
        sources = [out / name for out in separate.values() if (out / name).is_file()]
        assert sources, name
        assert (one.bundle / name).read_bytes() == sources[0].read_bytes(), name


def test_shared_steps_ran_once(one_and_separate):
    one, _ = one_and_separate
    shared = one.shared
    # one calibration set for both ONNX INT8 graphs and TFLite's observers
    assert shared["calibration set"]["runs"] == 1 and shared["calibration set"]["uses"] >= 3
    assert shared["ONNX int8 ranges"]["runs"] == 1 and shared["ONNX int8 ranges"]["uses"] == 2
    # PyTorch ran once on the random parity inputs (model.onnx and model.fp32.tflite) and once
    # on the calibration samples (TFLite int8's observer trial and its parity)
    assert shared["PyTorch reference"] == {"runs": 2, "uses": 4}
    assert sum("exporting to ONNX" in m for m in one.messages) == 1
    assert sum(m.startswith("calibration set:") for m in one.messages) == 1
    tfl = {a["file"]: a for a in _manifest(one.bundle)["artifacts"] if a["backend"] == "tflite"}
    assert tfl["model.int8.tflite"]["details"]["calibration"] == \
        next(a for a in _manifest(one.bundle)["artifacts"]
             if a["file"] == "model.int8.cpu.onnx")["details"]["calibration"]


def test_tflite_fp16_is_cast_from_the_fp32_flatbuffer_of_the_same_export(tmp_path):
    res = export("lenet5", ExportOptions(target="tflite", precision=["fp32", "fp16"],
                                         out=tmp_path / "b", parity_samples=2), log=None)
    fp16 = next(a for a in res.artifacts if a.file == "model.fp16.tflite")
    assert fp16.details["fp16_from"] == "model.fp32.tflite"
    assert fp16.details["parity"]["cosine"] > 0.999


@pytest.mark.parametrize("args,code,message", [
    (["--precision", "fp32,int9"], 2, "'int9' is not a precision"),
    (["--target", "onnx,x86-cpu", "--precision", "int8", *CALIB], 1,
     "--target onnx and x86-cpu both make onnxruntime:int8"),
    (["--target", "onnx,tflite", "--precision", "fp32", "--int8-io"], 1,
     "--int8-io applies to tflite int8 exports only"),
    (["--target", "onnx,tflight"], 1, "unknown target 'tflight'"),
    (["--target", "onnx,tflite", "--precision", "fp32,int8"], 1, "needs calibration data"),
])
def test_invalid_combinations_fail_in_one_line_before_any_work(tmp_path, args, code, message):
    out = tmp_path / "never"
    res = _cli("lenet5", "--out", str(out), *args)
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and message in res.output, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error"), res.output
    assert not out.exists() and not any(tmp_path.iterdir())  # nothing written
