"""What ``edgecnn export`` prints at the end: every file written and the device build command
(relative, on its own line) once, the accuracy-budget verdict when a budget was given, what
parity means on random weights, and a TensorRT plan line that says what was skipped.

Cost in ``make test``: about 20 s on 2 cores (two lenet5 int8 exports).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from click.testing import CliRunner

pytest.importorskip("onnxruntime")

from edgecnn.cli.main import cli  # noqa: E402

CALIB = ["--calib", "fashion-mnist:train", "--calib-samples", "16", "--parity-samples", "2"]


def _lines(result) -> list[str]:
    return [ln.rstrip() for ln in result.output.splitlines() if ln.strip()]


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                    reason="with TensorRT installed the engine is built at export")
def test_tensorrt_export_ends_with_files_and_one_relative_build_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(cli, ["export", "lenet5", "--target", "tensorrt", "--precision",
                                   "int8", "--out", "bundles/l5", *CALIB], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _lines(res)
    assert lines[-1] == "edgecnn build bundles/l5 --precision int8"  # relative, unwrapped
    assert lines[-3].startswith("wrote ") and "model.int8.trt.onnx" in lines[-3]
    assert sum(ln.startswith("edgecnn build") for ln in lines) == 1
    assert not any("ready in" in ln or "Copy " in ln or str(tmp_path) in ln for ln in lines)
    plan = next(ln for ln in lines if ln.startswith("TensorRT plan: model.int8.trt.onnx"))
    assert "(constant folding skipped: Q/DQ graph" in plan and "(skipped" not in plan


def test_budget_verdict_and_random_weights_are_said(tmp_path):
    out = tmp_path / "l5"
    res = CliRunner().invoke(cli, ["export", "lenet5", "--precision", "int8", "--out", str(out),
                                   "--max-accuracy-drop", "100", "--eval", "fashion-mnist:val",
                                   *CALIB], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _lines(res)
    for file in ("model.int8.cpu.onnx", "model.int8.onnx"):
        verdict = next(ln for ln in lines if ln.startswith(f"accuracy budget {file}: "))
        assert verdict.endswith(": met") and "<= 100 pt" in verdict and "vs fp32" in verdict
    assert "random weights: parity only (no trained weights, so no accuracy to measure)" in lines
    note = [ln for ln in lines if ln.startswith("random weights: parity only")][-1]  # summary
    manifest = json.loads((out / "manifest.json").read_text())
    low = [a["file"] for a in manifest["artifacts"] if a["details"]["parity"]["top1_agreement"] < 1]
    for file in low:  # a top1 below 100 % is explained, naming the artifact
        assert file in note and "cos" in note


def test_fp32_export_of_random_weights_says_parity_only_without_excuses(tmp_path):
    res = CliRunner().invoke(cli, ["export", "lenet5", "--out", str(tmp_path / "l5"), "-q"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    lines = _lines(res)
    assert "random weights: parity only" in lines  # top1 100 %: nothing to explain
    assert not any(ln.startswith("accuracy budget") for ln in lines)
