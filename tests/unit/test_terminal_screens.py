"""Screenshots at 100 columns: ``edgecnn demo``, ``edgecnn bench`` and ``edgecnn export --target
jetson-orin-nano`` run on a real pseudo-terminal of 100 columns (COLUMNS=100 too), their bytes
replayed on a screen model (tests/unit/_terminal.py). Checked: no line the libraries wrote (the
demo), no table cell wrapped onto a second line, no table line longer than the terminal, no
number shortened with '…', and the commands to copy whole on their own lines.

One demo run (a session fixture, lenet5 weights, 300 test images) serves every test here; the
bench reuses its bundle, so it builds nothing."""

from __future__ import annotations

import re
import sys

import pytest

from _terminal import (ROOT, Screen, cut_numbers, edgecnn_env, run_in_pty, table_lines,
                       wrapped_cells)

WEIGHTS = ROOT / "weights" / "lenet5_fmnist.pt"

# edgecnn's own lines in the demo that start in the first column (logs are indented, table
# titles and captions centred, tables drawn with box characters)
DEMO_OWN = re.compile(r"^(─+ edgecnn demo: .* ─+$|export |bundle: |edgecnn build |accuracy on "
                      r"|session\.predict on )")
# real lines the libraries wrote into 'make demo' before they were hidden
LIBRARY_LINES = [
    "INFO: [environment.cc:51] Creating LiteRT environment with options",
    "INFO: [cpu_registry.cc:29] XNNPACK CPU accelerator registered.",
    "WARNING: [npu_registry.cc:77] NPU accelerator could not be loaded and registered: "
    "kLiteRtStatusErrorNotFound.",
    "└ Could not load shared library /x/libLiteRtCompilerPlugin_IntelOpenvino.so: "
    "libopenvino.so.2631: cannot open shared object file: No such file or directory.",
    "WARNING:root:Your model is converted in training mode. Please set the module in evaluation "
    "mode with `module.eval()` for better on-device performance and compatibility.",
]


def foreign_lines(lines: list[str]) -> list[str]:
    """Lines edgecnn did not write (see DEMO_OWN)."""
    return [ln for ln in lines if ln.strip() and not (
        ln[0].isspace() or table_lines([ln]) or DEMO_OWN.match(ln))]


def _edgecnn_in_pty(args, cwd) -> Screen:
    rc, text = run_in_pty([sys.executable, "-m", "edgecnn.cli.main", *args], edgecnn_env(),
                          cwd=cwd, timeout=900)
    assert rc == 0, text[-3000:]
    return Screen(text)


def _assert_tables_fit(screen: Screen) -> None:
    shown = screen.lines
    assert table_lines(shown), "no table on the screen"
    assert table_lines(screen.wrapped_lines()) == [], "a table line is wider than 100 columns"
    assert wrapped_cells(table_lines(shown)) == [], "\n".join(shown)
    assert cut_numbers(shown) == [], "\n".join(shown)


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """(working folder, screen) of one ``edgecnn demo`` in a 100-column terminal."""
    work = tmp_path_factory.mktemp("demo")
    screen = _edgecnn_in_pty(["demo", "--weights", str(WEIGHTS), "--samples", "300",
                              "--out", "out/demo"], work)
    return work, screen


def test_the_counter_sees_library_lines():
    assert foreign_lines(LIBRARY_LINES) == LIBRARY_LINES
    assert foreign_lines(["export LiteRT (tflite:int8)", "  tflite int8: model.int8.tflite",
                          "edgecnn build out/demo --precision int8"]) == []


def test_demo_prints_only_edgecnn_lines(demo):
    _, screen = demo
    lines = screen.logical_lines()
    assert any(ln.startswith("export LiteRT (tflite:int8)") for ln in lines)  # it ran
    assert foreign_lines(lines) == [], "\n".join(lines)


def test_demo_screen_fits_100_columns(demo):
    _, screen = demo
    _assert_tables_fit(screen)
    # the build command for the GPU machine: whole, on its own line, relative to the cwd
    assert "edgecnn build out/demo --precision int8" in screen.lines


def test_bench_screen_fits_100_columns(demo):
    work, _ = demo
    screen = _edgecnn_in_pty(
        ["bench", str(WEIGHTS), "--out", "out/demo", "--targets",
         "torch,onnx:fp32,onnx:int8-trt,tflite:int8,tensorrt:fp16", "--data", "fashion-mnist:test",
         "--data-limit", "200", "--iterations", "10", "--warmup", "2", "--no-isolate",
         "--no-save", "--no-plot", "--report-dir", "report"], work)
    _assert_tables_fit(screen)
    row = next(ln for ln in screen.lines if ln.startswith("│ onnx:int8-trt "))
    assert re.search(r"\d+\.\d+ \(\d+\.\d+\)", row), row  # p50 (IQR), whole
    assert not any(ln.startswith("building ") for ln in screen.lines)  # the demo's bundle


def test_export_jetson_screen_fits_100_columns(tmp_path):
    screen = _edgecnn_in_pty(["export", str(WEIGHTS), "--target", "jetson-orin-nano", "--calib",
                              "fashion-mnist:train", "--calib-samples", "32", "--out", "b"],
                             tmp_path)
    _assert_tables_fit(screen)
    assert screen.lines[-1] == "edgecnn build b --precision int8"
