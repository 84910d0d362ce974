"""A terminal that respects the user (issue 15): no library noise, one-line errors before any
work, one exit-status convention, usual file modes, checksums in `check --target tensorrt`."""

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
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


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
