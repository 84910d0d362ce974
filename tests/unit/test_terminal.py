"""A terminal that respects the user (issue 15): no library noise, one-line errors before any
work, one exit-status convention, usual file modes, checksums in `check --target tensorrt`,
tables that fit 100 columns, predict on folders/globs with --json, --compare's verdicts explained,
plain piped output. Screenshots of demo, bench and export: test_terminal_screens.py."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from _terminal import Screen, cut_numbers, edgecnn_env, run_in_pty, table_lines, wrapped_cells
from edgecnn.cli.main import EXIT_FAILURE, EXIT_REGRESSION, EXIT_USAGE, cli

ROOT = Path(__file__).resolve().parents[2]


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_clean_error(result, match, code=1):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: "), result.output
    assert match in lines[-1], lines[-1]


def _edgecnn(args, cwd, **env):
    """``python -m edgecnn.cli.main ARGS`` as a user runs it (its own process, real fds)."""
    full = {k: v for k, v in os.environ.items() if k != "EDGECNN_VERBOSE"}
    full.update(PYTHONPATH=str(ROOT), COLUMNS="250", **env)
    return subprocess.run([sys.executable, "-m", "edgecnn.cli.main", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=600)


# -- 1. library noise ---------------------------------------------------------------------------

# what edgecnn's export writes: its log lines (pipeline, backends) and the summary table
EDGECNN_LINE = re.compile(
    r"^(model |exporting to ONNX|model\.onnx: |parity vs PyTorch|building |tflite (fp32|fp16|int8): "
    r"|updating bundle |bundle \S+ ready|\s*bundle \S+\s*$|[┏┃┡│└]|wrote \d+ file\(s\) in "
    r"|build the engine on the device: |edgecnn build |random weights: |accuracy budget )")


def _foreign(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and not EDGECNN_LINE.match(ln)]


def test_tflite_export_prints_only_edgecnn_lines(tmp_path):
    pytest.importorskip("litert_torch")
    res = _edgecnn(["export", "lenet5", "--target", "tflite", "--precision", "int8",
                    "--calib", "fashion-mnist:train", "--calib-samples", "32",
                    "--out", str(tmp_path / "b")], tmp_path)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "b" / "model.int8.tflite").is_file()
    text = res.stdout + res.stderr
    assert "tflite int8: model.int8.tflite" in text  # edgecnn's own lines survive
    assert _foreign(text) == []  # LiteRT C++ logs, oneDNN, 'converted in training mode'
    # --verbose shows the libraries' text again (and proves the count above can see it)
    loud = _edgecnn(["--verbose", "export", "lenet5", "--target", "tflite", "-q",
                     "--out", str(tmp_path / "b32")], tmp_path)
    assert loud.returncode == 0, loud.stderr
    assert len(_foreign(loud.stdout + loud.stderr)) > 0


NATIVE_SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    from edgecnn.cli.native_logs import hide_native_logs
    from edgecnn.errors import ExportError

    with hide_native_logs():
        os.write(2, b"native-err\\n"); os.write(1, b"native-out\\n")
        print("own-out"); print("own-err", file=sys.stderr)
        logging.warning("root-warning")
        warnings.warn("py-warning")
        with hide_native_logs():
            os.write(2, b"inner\\n")
        os.write(2, b"after-inner\\n")  # the outer block still hides it
        try:
            with hide_native_logs():
                os.write(2, b"plugin failed to load\\n")
                raise ExportError("conversion failed")
        except ExportError as e:
            print("ERR", e, file=sys.stderr)
    os.write(2, b"native-visible-after\\n")
    logging.warning("warning-visible-after")
""")


def test_hide_native_logs_redirects_fds_and_keeps_edgecnn_output(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("EDGECNN_VERBOSE", None)
    res = subprocess.run([sys.executable, "-c", NATIVE_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["own-out"]
    err = res.stderr
    for hidden in ("native-err", "native-out", "root-warning", "py-warning", "inner"):
        assert hidden not in err, err
    assert "own-err" in err and "native-visible-after" in err and "warning-visible-after" in err
    # the library's last lines travel with the error, on its one line
    assert re.search(r"ERR conversion failed \[library log: .*plugin failed to load; --verbose",
                     err), err
    # EDGECNN_VERBOSE=1: nothing is hidden
    res = subprocess.run([sys.executable, "-c", NATIVE_SCRIPT], env={**env, "EDGECNN_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=120)
    assert "native-err" in res.stderr and "root-warning" in res.stderr


def test_embedded_runtime_does_not_hide_logs():
    """Opt-in: an application's stderr is the application's."""
    for f in (ROOT / "edgecnn" / "runtime").rglob("*.py"):
        assert "native_logs" not in f.read_text(), f


# -- 2. tracebacks and late failures -----------------------------------------------------------

def test_train_out_is_a_file(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    _assert_clean_error(_run("train", "lenet5", "--out", str(f), "--epochs", "1"), "is a file")
    from edgecnn.errors import EdgeCNNError
    from edgecnn.train import TrainConfig

    with pytest.raises(EdgeCNNError, match="is a file"):  # the same error in the API
        TrainConfig(model="lenet5", out=f)


def test_eval_out_is_a_file_before_the_work(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    # a bundle that does not exist would fail too: the output check comes first
    _assert_clean_error(_run("eval", str(tmp_path / "no-bundle"), "--out", str(f)), "is a file")


def test_bench_report_dir_is_a_file_before_the_work(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    res = _run("bench", "lenet5", "--targets", "onnx:fp32", "--report-dir", str(f),
               "--out", str(tmp_path / "b"), "--no-save", "--iterations", "1")
    _assert_clean_error(res, "--report-dir")
    assert not (tmp_path / "b").exists()  # nothing was built
    from edgecnn.bench.plan import BenchOptions, plan_bench
    from edgecnn.errors import EdgeCNNError

    with pytest.raises(EdgeCNNError, match="report folder .* is a file"):
        plan_bench("lenet5", BenchOptions(report_dir=str(f)), log=lambda m: None)


def test_missing_calib_fails_before_the_onnx_export(tmp_path):
    out = tmp_path / "b"
    for target in ("tflite", "onnx", "tensorrt"):
        res = _run("export", "lenet5", "--target", target, "--precision", "int8", "--calib",
                   "/no/such/folder", "--out", str(out), "-q")
        _assert_clean_error(res, "--calib /no/such/folder does not exist")
        assert "exporting to ONNX" not in res.output
        assert not out.exists()
    from edgecnn.errors import CalibrationError
    from edgecnn.options import ExportOptions
    from edgecnn.pipeline import export

    with pytest.raises(CalibrationError, match="--calib /no/such/folder does not exist"):
        export("lenet5", ExportOptions(target="tflite", precision="int8", calib="/no/such/folder",
                                       out=out), log=None)
    res = _run("export", "lenet5", "--precision", "int8", "--calib", "fashion-mnist:train",
               "--max-accuracy-drop", "1", "--eval", "fashion-mnist:nope", "--out", str(out))
    _assert_clean_error(res, "unknown split 'nope'")
    res = _run("export", "lenet5", "--weights", str(tmp_path / "none.pt"), "--out", str(out))
    _assert_clean_error(res, "does not exist")


# -- 3. exit statuses ---------------------------------------------------------------------------

def test_batch_zero_is_a_usage_error_in_export_and_bench():
    for args in (("export", "lenet5", "--batch", "0"), ("export", "lenet5", "--batch", "8,1,32"),
                 ("bench", "lenet5", "--batch", "0"), ("bench", "lenet5", "--batch", "1,x")):
        res = _run(*args)
        assert res.exit_code == 2, (args, res.output)
        assert "--batch" in res.output and "Traceback" not in res.output


def test_failures_exit_1_and_usage_errors_exit_2(tmp_path):
    assert (EXIT_FAILURE, EXIT_USAGE, EXIT_REGRESSION) == (1, 2, 3)
    assert _run("export", "lenet5", "--no-such-option").exit_code == EXIT_USAGE
    assert _run("export", "lenet5", "--precision", "int7").exit_code == EXIT_USAGE
    _assert_clean_error(_run("check", str(tmp_path / "missing")), "does not exist", EXIT_FAILURE)
    res = _run("bench", "lenet5", "--targets", "tflite:int8,onnx:int8", "--calib", "/no/such",
               "--out", str(tmp_path / "b"), "--no-save")
    _assert_clean_error(res, "--calib /no/such does not exist", EXIT_FAILURE)
    assert not (tmp_path / "b").exists()


def test_regression_has_its_own_exit_status(tmp_path):
    from edgecnn.bench.history import History
    from edgecnn.bench.report import BenchReport, TargetResult
    from edgecnn.bench.stats import LatencyStats

    def report(p50):
        samples = [p50 * (1 + 0.002 * ((i % 5) - 2)) for i in range(50)]
        row = TargetResult("onnx:fp32", "onnxruntime", "fp32", 1,
                           latency=LatencyStats.from_samples(samples), top1=90.0)
        return BenchReport(model="lenet5", input_size=[1, 32, 32], results=[row],
                           machine={"hostname": "box", "cpu_model": "cpu", "threads": 2},
                           options={}, created="2026-01-01T00:00:00+00:00")

    db = tmp_path / "h.db"
    with History(db) as h:
        h.store(report(1.0))
        h.store(report(1.5))
    res = _run("bench", "--compare", "latest", "--db", str(db), "--fail-on-regression")
    assert res.exit_code == EXIT_REGRESSION == 3, res.output
    assert "regression" in res.output
    res = _run("bench", "--compare", "latest", "--db", str(db))
    assert res.exit_code == 0, res.output
    assert "3" in _run("--help").output.split("Exit status:")[1]


# -- 4. file modes ------------------------------------------------------------------------------

def test_bundle_folder_and_files_follow_the_umask(tmp_path):
    from edgecnn.bundle import BundleWriter
    from edgecnn.manifest import Manifest, Preprocess

    manifest = Manifest(model="m", preprocess=Preprocess(size=[4, 4], channels=1, mean=[0.0],
                                                         std=[1.0], channel_order="L"),
                        labels=["a", "b"])
    old = os.umask(0o002)
    try:
        with BundleWriter(tmp_path / "b", manifest) as w:
            w.write_text("notes.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o775
    assert stat.S_IMODE((tmp_path / "b" / "manifest.json").stat().st_mode) == 0o664
    assert stat.S_IMODE((tmp_path / "b" / "notes.txt").stat().st_mode) == 0o664


# -- 5. check --target tensorrt verifies checksums -----------------------------------------------

def test_check_tensorrt_refuses_a_changed_onnx(tmp_path):
    pytest.importorskip("onnxscript")
    out = tmp_path / "b"
    res = _run("export", "lenet5", "--target", "tensorrt", "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    # 6. export ends with every file it wrote and the device's build command on its own line
    lines = res.output.splitlines()
    assert f"wrote 4 file(s) in {out}: model.onnx, model.fp32.trt.onnx, build_plan.json, " \
           f"manifest.json" in lines, res.output
    assert lines[-1] == "edgecnn build b --precision fp32"  # relative: b is outside the cwd
    assert _run("check", str(out), "--target", "tensorrt").exit_code == 0
    for name in ("model.fp32.trt.onnx", "model.onnx"):
        f = out / name
        data = bytearray(f.read_bytes())
        data[len(data) // 2] ^= 0x01  # one weight bit: still a valid ONNX file
        f.write_bytes(bytes(data))
    _assert_clean_error(_run("check", str(out), "--target", "tensorrt"), "does not match")
    (out / "model.fp32.trt.onnx").unlink()  # now the check reads model.onnx (a manifest artifact)
    _assert_clean_error(_run("check", str(out), "--target", "tensorrt"), "model.onnx does not match")


# -- 6. piped output and NO_COLOR ---------------------------------------------------------------

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _in_pty(args, env):
    """Run ``args`` with a pseudo-terminal as stdin/stdout/stderr; its output as text."""
    return run_in_pty(args, env, timeout=120)


def _colours(text: str) -> set[str]:
    """Colour parameters (30-38, 40-48, 90-107) among the SGR codes of ``text``."""
    out = set()
    for params in SGR.findall(text):
        for p in params.split(";"):
            if p.isdigit() and (30 <= int(p) <= 48 or 90 <= int(p) <= 107):
                out.add(p)
    return out


def test_no_colour_when_piped_or_no_color(tmp_path):
    from edgecnn.bench.history import History
    from edgecnn.bench.report import BenchReport, TargetResult
    from edgecnn.bench.stats import LatencyStats

    db = tmp_path / "h.db"
    with History(db) as h:
        for p50 in (1.0, 1.5, 0.5):
            samples = [p50 * (1 + 0.002 * ((i % 5) - 2)) for i in range(50)]
            row = TargetResult("onnx:fp32", "onnxruntime", "fp32", 1,
                               latency=LatencyStats.from_samples(samples), top1=90.0)
            h.store(BenchReport(model="lenet5", input_size=[1, 32, 32], results=[row],
                                machine={"hostname": "box", "cpu_model": "cpu", "threads": 2},
                                options={}, created="2026-01-01T00:00:00+00:00"))
    args = [sys.executable, "-m", "edgecnn.cli.main", "bench", "--compare", "2", "--db", str(db)]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm-256color", COLUMNS="100")
    rc, text = _in_pty(args, env)
    assert rc == 0 and "regression" in text, text
    assert _colours(text), "a terminal gets colours"  # so the checks below can see them
    rc, text = _in_pty(args, {**env, "NO_COLOR": "1"})
    assert rc == 0 and "regression" in text and not _colours(text), text
    piped = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and "regression" in piped.stdout
    assert "\x1b" not in piped.stdout + piped.stderr and "\r" not in piped.stdout + piped.stderr


# -- 7. tables that fit 100 columns --------------------------------------------------------------

EXPORT_COMMAND = ("edgecnn export resnet18 --target tflite --precision int8 "
                  "--out /home/someone/projects/edge/bundles/resnet18")


def _bench_report(batches=(1, 8)):
    """Every kind of row the terminal table shows: long target names, two batch sizes, accuracy,
    a skipped target; latencies of three and four digits."""
    from edgecnn.bench.report import BenchReport, TargetResult
    from edgecnn.bench.stats import LatencyStats

    rows = []
    for b in batches:
        for i, (target, backend, prec) in enumerate((
                ("torch", "torch", "fp32"), ("onnx:int8-trt", "onnxruntime", "int8"),
                ("tflite:fp32", "tflite", "fp32"))):
            p50 = (1234.5 if target == "torch" else 23.456) * b
            lat = LatencyStats.from_samples([p50 * (1 + 0.01 * (k % 7)) for k in range(40)])
            rows.append(TargetResult(target, backend, prec, b, threads=2, rounds=3, load_ms=1234.5,
                                     first_ms=2345.67, latency=lat, throughput=lat.throughput(b),
                                     peak_rss_mb=1234.0, rss_delta_mb=567.0,
                                     artifact_bytes=123_456_789, top1=91.65 - i, top5=99.9,
                                     top1_drop=float(i), agreement=100.0 - i, eval_n=10000))
        rows.append(TargetResult("tensorrt:fp16", "tensorrt", "fp16", b, "skipped",
                                 "no NVIDIA GPU on this machine"))
    rows.append(TargetResult("tflite:int8", "tflite", "int8", 1, "skipped", f"bundle has no "
                             f"tflite:int8 artifact; build it with '{EXPORT_COMMAND}'"))
    return BenchReport(model="resnet18", input_size=[3, 224, 224], results=rows,
                       machine={"cpu_model": "AMD EPYC", "cpu_count": 2, "threads": 2},
                       options={}, reference="torch", reference_top1=91.65,
                       data="fashion-mnist:test")


def _printed(fn, width=100) -> str:
    import io

    from rich.console import Console

    buf = io.StringIO()
    fn(Console(file=buf, width=width))
    return buf.getvalue()


def test_bench_table_fits_100_columns_and_wide_shows_every_column():
    from edgecnn.bench.report import print_table

    report = _bench_report()
    text = _printed(lambda con: print_table(report, con))
    table = table_lines(text.splitlines())
    assert table and max(len(ln) for ln in table) <= 100, text
    assert cut_numbers(table) == [] and wrapped_cells(table) == [], text
    for cell in ("10172.3 (321.0)", "193.3 (6.099)", "onnx:int8-trt", "skipped", "91.65", "123.46",
                 "+2.00"):
        assert cell in text, (cell, text)
    wide = _printed(lambda con: print_table(report, con, wide=True))
    lines = table_lines(wide.splitlines())
    assert max(len(ln) for ln in lines) > 100  # every column: wider than the terminal, not cut
    assert cut_numbers(lines) == [] and wrapped_cells(lines) == [], wide
    assert "first ms" in wide and "mean ± std" in wide and "2345.67" in wide
    assert any(EXPORT_COMMAND in ln for ln in text.splitlines())  # a command to copy: one line


def _cli_100(*args):
    return CliRunner(env={"COLUMNS": "100"}).invoke(cli, list(args), catch_exceptions=False)


def test_targets_table_and_title_fit_100_columns():
    res = _cli_100("targets")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert "edgecnn targets (--target NAME, or a path to your own .toml)" in lines[0]
    assert max(len(ln) for ln in lines) <= 100 and cut_numbers(lines) == []
    assert any("jetson-orin-nano" in ln and "tensorrt:int8" in ln and "1,1,8" in ln
               for ln in lines)


@pytest.fixture(scope="module")
def trt_bundle(tmp_path_factory):
    """lenet5 (random weights) with both int8 ONNX graphs, then prepared for TensorRT:
    model.onnx runs on onnxruntime, the engine is still to be built on a device."""
    pytest.importorskip("onnxscript")
    out = tmp_path_factory.mktemp("terminal") / "lenet5"
    for args in (("--target", "onnx", "--precision", "int8", "--calib", "fashion-mnist:train",
                  "--calib-samples", "16"), ("--target", "tensorrt")):
        res = _run("export", "lenet5", *args, "--out", str(out), "-q")
        assert res.exit_code == 0, res.output
    return out


def test_info_verify_and_eval_fit_100_columns(trt_bundle, tmp_path):
    res = _cli_100("info", str(trt_bundle), "--verify")
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    table = table_lines(lines)
    assert max(len(ln) for ln in table) <= 100
    assert cut_numbers(table) == [], res.output  # the sha256 column was cut to '0681603db…'
    assert "model.int8.cpu.onnx" in res.output and "onnx:int8-trt" in res.output
    assert "checksums: all 3 artifacts match" in lines[-1]
    res = _cli_100("eval", str(trt_bundle), "--samples", "40", "--no-progress",
                   "--out", str(tmp_path / "eval"))
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    title = "lenet5 (onnxruntime:fp32) on fashion-mnist:test[40 seed=0]"
    assert any(ln.strip() == title for ln in lines), res.output  # one line, not wrapped
    assert max(len(ln) for ln in table_lines(lines)) <= 100 and cut_numbers(lines) == []
    png = next(ln for ln in lines if ln.startswith("confusion matrix PNG: "))
    assert Path(png.split(": ", 1)[1]).is_file()  # the whole path on its line


# -- 8. predict: folders, globs, unreadable images, --json, a prepared TensorRT bundle ---------------

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from edgecnn.data.datasets import load_dataset

    root = tmp_path_factory.mktemp("images")
    ds = load_dataset("fashion-mnist:test").subset(3, seed=0)
    (root / "sub").mkdir()
    for i, rel in enumerate(("b.png", "a.png", "sub/c.png")):
        ds.image(i).save(root / rel)
    (root / "broken.png").write_bytes(b"not an image")
    (root / "notes.txt").write_text("not an image either")
    return root


def test_predict_takes_folders_and_globs_and_goes_on_past_a_bad_image(trt_bundle, images):
    res = _run("predict", str(trt_bundle), str(images), "--top-k", "1")
    assert res.exit_code == 1, res.output
    lines = res.output.splitlines()
    shown = [ln for ln in lines if ln.startswith(str(images))]
    assert shown == [str(images / "a.png"), str(images / "b.png"), str(images / "sub/c.png")]
    assert f"cannot read image {images / 'broken.png'}" in res.output  # its own line, then on
    assert lines[-1] == "Error: 1 of 4 image(s) could not be read (listed above)"
    assert "notes.txt" not in res.output
    res = _run("predict", str(trt_bundle), str(images / "*.png"), "--top-k", "1")
    assert [ln for ln in res.output.splitlines() if ln.endswith(".png") and "/" in ln
            and not ln.startswith("cannot")] == [str(images / "a.png"), str(images / "b.png")]
    res = _run("predict", str(trt_bundle), str(images / "sub" / "*.jpg"))
    _assert_clean_error(res, "holds no images")


def test_predict_json_is_one_document(trt_bundle, images):
    import json

    res = CliRunner().invoke(
        cli, ["predict", str(trt_bundle), str(images / "a.png"), str(images / "broken.png"),
              str(images / "missing.png"), "--json", "--top-k", "2"], catch_exceptions=False)
    assert res.exit_code == 1
    doc = json.loads(res.stdout)  # nothing else on stdout
    assert doc["model"] == "lenet5" and doc["artifact"] == "onnxruntime:fp32"
    assert doc["images"] == 3 and doc["failed"] == 2
    first = doc["results"][0]
    assert first["image"] == str(images / "a.png") and len(first["predictions"]) == 2
    assert set(first["predictions"][0]) == {"label", "index", "probability"}
    assert "does not exist" in doc["results"][2]["error"]
    assert "could not be read" in res.stderr


def test_predict_tensorrt_on_a_prepared_bundle_points_to_edgecnn_build(trt_bundle, images):
    res = _run("predict", str(trt_bundle), str(images / "a.png"), "--backend", "tensorrt")
    _assert_clean_error(res, f"edgecnn build {trt_bundle} --precision fp32")
    assert "edgecnn export" not in res.output


# -- 9. bench --compare and bench into an existing bundle ------------------------------------------

def test_compare_gives_the_threshold_and_why_a_large_change_is_the_same(tmp_path):
    from edgecnn.bench.history import History
    from edgecnn.bench.report import BenchReport, TargetResult
    from edgecnn.bench.stats import LatencyStats

    def stored(samples):
        row = TargetResult("onnx:fp32", "onnxruntime", "fp32", 1,
                           latency=LatencyStats.from_samples(samples))
        return BenchReport(model="lenet5", input_size=[1, 32, 32], results=[row],
                           machine={"hostname": "box", "cpu_model": "cpu", "threads": 2},
                           options={}, created="2026-01-01T00:00:00+00:00")

    db = tmp_path / "h.db"
    with History(db) as h:
        h.store(stored([1.0 + 0.001 * ((i % 5) - 2) for i in range(50)]))
        h.store(stored([3.02 + 0.12 * ((i % 41) - 20) for i in range(41)]))  # +202 %, noisy
    res = _cli_100("bench", "--compare", "latest", "--db", str(db))
    assert res.exit_code == 0, res.output
    row = next(ln for ln in res.output.splitlines() if "onnx:fp32" in ln)
    assert "(+202%)" in row and "same (noise)" in row and "±" in row, res.output
    flat = " ".join(res.output.split())  # the notes below the table wrap at 100 columns
    assert "k=3 x the two runs' combined robust spread" in flat
    assert re.search(r"onnx:fp32 batch 1: \+202% .* is noise: within the threshold of [\d.]+ ms = "
                     r"3 x the combined spread", flat), res.output
    assert max(len(ln) for ln in res.output.splitlines()) <= 100


def test_bench_says_what_it_adds_to_an_existing_bundle(trt_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "b"
    shutil.copytree(trt_bundle, bundle)
    res = _cli_100("bench", "lenet5", "--targets", "onnx:fp32,onnx:fp16", "--out", str(bundle),
                   "--no-isolate", "--iterations", "2", "--warmup", "0", "--no-save", "--no-plot",
                   "--report-dir", str(tmp_path / "r"))
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert f"adding onnx:fp16 to the existing bundle {bundle}" in text, res.output
    assert f"wrote 1 file(s) into {bundle}: model.fp16.onnx" in text


# -- 10. no colours and no redraws when piped, no colours with NO_COLOR, in every command ------------

def test_every_table_command_is_plain_when_piped_and_colourless_with_no_color(trt_bundle, images,
                                                                               tmp_path):
    commands = [["targets"], ["info", str(trt_bundle), "--verify"],
                ["predict", str(trt_bundle), str(images / "a.png")],
                ["eval", str(trt_bundle), "--samples", "40", "--out", str(tmp_path / "e")]]
    env = edgecnn_env()
    for args in commands:
        full = [sys.executable, "-m", "edgecnn.cli.main", *args]
        piped = subprocess.run(full, env=env, capture_output=True, text=True, timeout=300)
        assert piped.returncode == 0, (args, piped.stderr)
        both = piped.stdout + piped.stderr
        assert "\x1b" not in both and "\r" not in both, (args, both)
        rc, text = run_in_pty(full, {**env, "NO_COLOR": "1"}, timeout=300)
        assert rc == 0 and not _colours(text), (args, text)
        screen = Screen(text)  # 100 columns: nothing cut, no table line the terminal wrapped
        assert cut_numbers(screen.lines) == [], (args, text)
        assert table_lines(screen.wrapped_lines()) == [], (args, text)
