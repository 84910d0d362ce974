"""Every reader of a bundle file verifies it before use: one changed byte per file kind, and
every command and API call that reads that kind must stop with a clean checksum error.

The table of readers and what each verifies is in docs/hardening.md ("Every reader verifies");
READERS below is the same table, run. The change keeps the file's size, so it is the sha256
(not the cheaper size check) that must catch it.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from _hardening_lib import TRAINED_LENET5
from click.testing import CliRunner

import edgecnn.runtime as rt
from edgecnn.cli.main import cli
from edgecnn.errors import ChecksumError

CALIB_CACHE = "calibration.minmax.json"
DATA = ["--data", "fashion-mnist:test", "--samples", "8"]
BENCH = ["--iterations", "2", "--warmup", "0", "--no-isolate", "--no-plot", "--no-save",
         "--threads", "1"]
# (backend, precision) of each artifact as the CLI and edgecnn.runtime name it
ARTIFACTS = {"model.onnx": ("onnxruntime", "fp32", "onnx:fp32"),
             "model.int8.onnx": ("onnxruntime", "int8-trt", "onnx:int8-trt"),
             "model.int8.cpu.onnx": ("onnxruntime", "int8", "onnx:int8"),
             "model.fp32.tflite": ("tflite", "fp32", "tflite:fp32"),
             "model.int8.tflite": ("tflite", "int8", "tflite:int8")}


def _artifact_readers(file: str) -> dict[str, list[str] | str]:
    backend, precision, target = ARTIFACTS[file]
    pick = ["--backend", backend, "--precision", precision]
    readers: dict[str, list[str] | str] = {
        "edgecnn.runtime.load": "api",
        "Bundle.verify": "verify",
        "predict": ["predict", "{b}", "{img}", *pick],
        "eval": ["eval", "{b}", *DATA, *pick, "--out", "{tmp}/eval", "--no-progress"],
        "bench": ["bench", "{b}", "--targets", target, *BENCH, "--report-dir", "{tmp}/bench"],
        "info --verify": ["info", "{b}", "--verify"],
    }
    if file == "model.int8.onnx":
        readers["check"] = ["check", "{b}"]
    if file == "model.onnx":
        readers["check --target tensorrt"] = ["check", "{b}", "--target", "tensorrt",
                                              "--precision", "fp32"]
    return readers


PREPARED = {"check --target tensorrt": ["check", "{b}", "--target", "tensorrt"],
            "build": ["build", "{b}"]}
CASES = [(f, r, how) for f in ARTIFACTS for r, how in _artifact_readers(f).items()] + \
        [(f, r, how) for f in ("model.int8.trt.onnx", "build_plan.json")
         for r, how in PREPARED.items()] + \
        [(CALIB_CACHE, "export (calibration reuse)", "export")]


def plant(path: Path) -> None:
    """Change one byte, keeping the size: in a calibration cache, a digit of a range value
    (still valid JSON, the same key); elsewhere the middle byte."""
    data = bytearray(path.read_bytes())
    if path.name == CALIB_CACHE:
        m = re.search(rb'"amax": \{[^}]*?: -?(\d)', bytes(data))
        i = m.start(1)
        data[i] = ord("1") if data[i] != ord("1") else ord("2")
    else:
        data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def damaged(full_bundle, tmp_path):
    def make(file: str) -> Path:
        if not (full_bundle / file).is_file():
            pytest.skip(f"{file} is not made on this machine (no LiteRT export)")
        b = tmp_path / "bundle"
        shutil.copytree(full_bundle, b)
        plant(b / file)
        return b
    return make


def _one_error_line(result) -> str:
    assert "Traceback" not in result.output, result.output
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, (result.exit_code, result.output[-2000:])
    return errors[0]


@pytest.mark.parametrize("file,reader,how", CASES, ids=[f"{f}-{r}" for f, r, _ in CASES])
def test_every_reader_refuses_a_changed_byte(damaged, tmp_path, file, reader, how):
    b = damaged(file)
    if how == "api":
        backend, precision, _ = ARTIFACTS[file]
        with pytest.raises(ChecksumError, match="checksum"):
            rt.load(b, backend=backend, precision=precision)
        return
    if how == "verify":
        from edgecnn.bundle import Bundle

        with pytest.raises(ChecksumError, match="checksum"):
            Bundle.open(b).verify()
        return
    if how == "export":  # a cache is not refused but never trusted: the ranges are computed anew
        from edgecnn.options import ExportOptions
        from edgecnn.pipeline import export

        logs: list[str] = []
        export(str(TRAINED_LENET5), ExportOptions(
            target="onnx", precision="int8", out=b, parity_samples=2, threads=1,
            calib="fashion-mnist:train", calib_samples=64), log=logs.append)
        assert not any(m.startswith("reusing cached calibration") for m in logs), logs
        assert any(m.startswith("calibrated") for m in logs), logs
        return
    from PIL import Image

    img = tmp_path / "image.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(img)
    args = [a.format(b=b, img=img, tmp=tmp_path) for a in how]
    result = CliRunner().invoke(cli, args, catch_exceptions=True)
    if reader == "bench" and result.exit_code == 0:
        # bench goes on with the other targets: the damaged one is a failed row, never measured
        report = json.loads(next((tmp_path / "bench").rglob("bench.json")).read_text())
        text = json.dumps(report)
        assert "checksum" in text and '"failed"' in text, text[:2000]
        return
    assert "checksum" in _one_error_line(result).lower(), result.output[-2000:]
