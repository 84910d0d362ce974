"""The CLI: help without extras, tables, and bad input as one clean line with exit status 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecnn.cli.main import COMMANDS, cli

FOUNDATION_COMMANDS = ("models", "targets", "export", "info", "predict", "doctor")


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _assert_clean_error(result, match):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("Error: "), result.output
    assert match in lines[-1], lines[-1]


BLOCK_EXTRAS = """
import sys
for name in ("torch", "onnx", "onnxscript", "onnxruntime", "tensorrt", "litert_torch",
             "ai_edge_litert", "tensorflow", "matplotlib", "cuda"):
    sys.modules[name] = None  # any import of it now raises ImportError
from edgecnn.cli.main import cli
args = sys.argv[1:]
try:
    cli(args, prog_name="edgecnn")
except SystemExit as e:
    assert e.code in (0, None), e.code
"""


def test_help_works_without_any_extra():
    """`edgecnn --help` and `<cmd> --help` of every registered command, extras blocked."""
    cmds = [[]] + [[c] for c in COMMANDS]
    script = BLOCK_EXTRAS + "\n"
    for args in cmds:
        out = subprocess.run([sys.executable, "-c", script, *args, "--help"], capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, (args, out.stderr[-2000:])
        assert "Usage: edgecnn" in out.stdout
    top = subprocess.run([sys.executable, "-c", script, "--help"], capture_output=True, text=True,
                         timeout=120).stdout
    for c in FOUNDATION_COMMANDS:
        assert c in top


def test_export_help_lists_every_export_option():
    from dataclasses import fields

    from edgecnn.options import ExportOptions

    text = _run("export", "--help").output
    for f in fields(ExportOptions):
        assert "--" + f.name.replace("_", "-") in text, f.name


def test_models_table(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    from edgecnn.models import list_models

    for _ in range(2):  # the second run reads the cache
        res = _run("models")
        assert res.exit_code == 0
        for info in list_models():
            assert info.name in res.output
    assert (tmp_path / "edgecnn" / "zoo_counts.json").is_file()
    assert "61.71k" in res.output  # lenet5's 61,706 parameters


def test_targets_table():
    res = _run("targets")
    assert res.exit_code == 0
    assert "x86-cpu" in res.output and "tensorrt" in res.output


def test_doctor_json_reads_metadata_only():
    res = _run("doctor", "--json")
    assert res.exit_code == 0
    data = json.loads(res.output)
    for key in ("python", "edgecnn", "numpy", "torch", "onnx", "onnxruntime", "litert-torch",
                "ai-edge-litert", "tensorrt", "cuda-python"):
        assert key in data["packages"]
    assert data["packages"]["edgecnn"] == "0.1.0"
    # metadata, not imports: a fresh process running doctor must not have imported torch
    code = ("import sys; from edgecnn.cli.main import cli\n"
            "try:\n    cli(['doctor', '--json'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


# -- export end to end and its errors ------------------------------------------------------
def test_export_info_predict(user_models, tmp_path):
    pytest.importorskip("onnxscript")
    np = pytest.importorskip("numpy")
    from PIL import Image

    out = tmp_path / "b"
    res = _run("export", "edgecnn_test_models:tiny_net", "--out", str(out), "--num-classes", "3",
               "--quiet")
    assert res.exit_code == 0, res.output
    assert "model.onnx" in res.output and "onnxruntime" in res.output and "cos" in res.output
    info = _run("info", str(out), "--verify")
    assert info.exit_code == 0
    assert "tiny_net" in info.output and "all 1 artifacts match" in info.output
    img = tmp_path / "x.png"
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(img)
    pred = _run("predict", str(out), str(img), "--top-k", "2")
    assert pred.exit_code == 0, pred.output
    assert pred.output.count("class_") == 2


def test_export_unknown_model(tmp_path):
    _assert_clean_error(_run("export", "resnet19", "--out", str(tmp_path / "b")), "unknown model")


def test_export_unknown_target(tmp_path):
    _assert_clean_error(_run("export", "lenet5", "--target", "jetson-nanoo"), "unknown target")


def test_export_malformed_profile(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('name = "bad"\nbackend = "onnx"\nprecision = "fp9"\n')
    _assert_clean_error(_run("export", "lenet5", "--target", str(p)), "precision must be one of")


def test_export_weights_not_a_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    w = tmp_path / "w.pt"
    torch.save([1, 2, 3], w)
    _assert_clean_error(_run("export", "lenet5", "--weights", str(w), "--out", str(tmp_path / "b")),
                        "is not a state dict")


def test_export_weights_that_do_not_match(tmp_path):
    torch = pytest.importorskip("torch")
    from edgecnn.models import create_model

    w = tmp_path / "w.pt"
    torch.save(create_model("resnet8").state_dict(), w)
    _assert_clean_error(_run("export", "lenet5", "--weights", str(w), "--out", str(tmp_path / "b")),
                        "do not match the model")


def test_export_unwritable_output(tmp_path, user_models):
    pytest.importorskip("torch")
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    _assert_clean_error(_run("export", "edgecnn_test_models:tiny_net", "--out",
                             str(blocker / "bundle")), "is a file")


def test_export_int8_without_calibration(tmp_path):
    _assert_clean_error(_run("export", "lenet5", "--precision", "int8"), "--calib")


def test_export_bad_input_size_and_batch():
    res = _run("export", "lenet5", "--input-size", "3x224")
    _assert_clean_error(res, "CxHxW")
    res = _run("export", "lenet5", "--batch", "1,8")
    assert res.exit_code == 2 and "MIN,OPT,MAX" in res.output  # click usage error


def test_info_missing_bundle(tmp_path):
    _assert_clean_error(_run("info", str(tmp_path / "nope")), "does not exist")


def test_info_checksum_mismatch(tiny_bundle):
    (tiny_bundle / "model.onnx").write_bytes(b"broken")
    _assert_clean_error(_run("info", str(tiny_bundle), "--verify"), "checksum")


def test_predict_missing_image(tiny_bundle, tmp_path):
    _assert_clean_error(_run("predict", str(tiny_bundle), str(tmp_path / "nope.png")),
                        "does not exist")


def test_predict_missing_bundle_file(tiny_bundle, tmp_path):
    (tiny_bundle / "model.onnx").unlink()
    _assert_clean_error(_run("predict", str(tiny_bundle), str(tmp_path / "x.png")), "missing")


# -- how the edgecnn process ends ------------------------------------------------------------
_EXIT_SCRIPT = """
import atexit, sys
from pathlib import Path
hook = Path(sys.argv[1])
atexit.register(lambda: hook.write_text("exit hooks ran"))
from edgecnn.cli.main import main
sys.argv = ["edgecnn", *sys.argv[2:]]
main()
"""


@pytest.mark.parametrize("args,code", [(["models"], 0), (["no-such-command"], 2),
                                       (["predict", "/nonexistent-bundle", "x.png"], 1)])
def test_the_process_ends_with_the_command_code_after_the_exit_hooks(tmp_path, args, code):
    """main() skips the interpreter's teardown (os._exit) but keeps the exit status, Python's
    exit hooks and everything printed."""
    hook = tmp_path / "hook.txt"
    proc = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(hook), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == code, proc.stderr
    assert hook.read_text() == "exit hooks ran"
    if code == 0:
        assert "lenet5" in proc.stdout  # the whole table came out before the process ended
    else:
        assert "Error" in proc.stderr


def test_exit_now_waits_the_normal_way_for_running_threads(monkeypatch):
    import threading

    from edgecnn.cli.main import exit_now

    release = threading.Event()
    worker = threading.Thread(target=release.wait)  # non-daemon: exit must wait for it
    worker.start()
    try:
        with pytest.raises(SystemExit) as exc:
            exit_now(3)
        assert exc.value.code == 3
    finally:
        release.set()
        worker.join()
    monkeypatch.setenv("EDGECNN_VERBOSE", "1")  # verbose: the teardown's messages show
    with pytest.raises(SystemExit):
        exit_now(0)
    monkeypatch.delenv("EDGECNN_VERBOSE")
    with pytest.raises(SystemExit) as exc:
        exit_now("a message")  # not a status: Python prints it and exits 1
    assert exc.value.code == "a message"
