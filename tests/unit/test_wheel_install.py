"""A non-editable wheel install carries everything the CLI needs: device profiles, calibration
recipes and sample, demo checkpoints (copied from the top-level folders at build time) and the
ImageNet names. The wheel is built from a copy of the source tree, installed with --no-deps into
a fresh venv that borrows this interpreter's packages through a .pth file (no network), and run
from a folder outside the source tree.

Cost in `make test`: ~25 s on 2 cores (wheel ~5 s, venv + install ~5 s, an INT8 lenet5 export
for jetson-orin-nano ~10 s). `edgecnn demo` from the wheel is marked slow (~1 min).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("edgecnn", "targets", "calibration", "weights", "pyproject.toml", "setup.py",
           "MANIFEST.in", "README.md")


def _run(cmd, cwd, env, timeout=300):
    out = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert out.returncode == 0, f"{cmd}: {out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """(venv python, venv bin, a work folder outside the source tree, env)."""
    pytest.importorskip("setuptools")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        p = ROOT / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=shutil.ignore_patterns(
                "__pycache__", "_shipped", "*.egg-info"))
        else:
            shutil.copy2(p, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PIP_NO_INDEX="1", COLUMNS="200")  # no network; tables unwrapped
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", base / "dist", src], base, env)
    wheel = next((base / "dist").glob("edgecnn-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], base, env)
    vpy = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", vpy, "install", "--no-deps", "-q", wheel],
         base, env)
    # then (never before the install: pip must not see the editable edgecnn) borrow this
    # interpreter's packages; plain paths, so their .pth files (the editable finder) stay off
    site = Path(_run([vpy, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     base, env).strip())
    borrowed = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_borrowed.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    work = base / "work"
    work.mkdir()
    return vpy, venv / "bin", work, env


def test_wheel_ships_profiles_calibration_weights_and_labels(wheel_venv):
    vpy, bin_, work, env = wheel_venv
    where = json.loads(_run([vpy, "-c", (
        "import json, edgecnn, edgecnn.resources as r, edgecnn.labels as l; print(json.dumps("
        "[edgecnn.__file__, str(r.shipped_dir('targets')), str(r.shipped_dir('calibration')), "
        "str(r.shipped_dir('weights')), len(l.builtin('imagenet').names)]))")], work, env))
    venv = str(vpy.parent.parent)
    assert all(str(p).startswith(venv) for p in where[:4]), where  # the wheel's, not the source
    assert where[4] == 1000
    listed = _run([bin_ / "edgecnn", "targets"], work, env)
    for profile in (ROOT / "targets").glob("*.toml"):
        assert profile.stem in listed, profile.stem
    shipped = Path(where[1]).parent
    out = _run([bin_ / "edgecnn", "export", shipped / "weights" / "lenet5_fmnist.pt", "--target",
                "jetson-orin-nano", "--calib",
                shipped / "calibration" / "fashion-mnist-sample.toml", "--calib-samples", "32",
                "--out", work / "bundle", "--quiet"], work, env)
    assert "edgecnn build" in out
    manifest = json.loads((work / "bundle" / "manifest.json").read_text())
    assert manifest["labels"][0] == "T-shirt/top"
    assert (work / "bundle" / "build_plan.json").is_file()


def test_user_profile_folder_is_searched_first(wheel_venv, tmp_path):
    vpy, bin_, work, env = wheel_venv
    (tmp_path / "my-board.toml").write_text('name = "my-board"\nbackend = "onnx"\n'
                                            'precision = "fp32"\nthreads = 3\n')
    (tmp_path / "x86-cpu.toml").write_text('name = "x86-cpu"\nbackend = "onnx"\n'
                                           'precision = "fp32"\nthreads = 7\n')
    env = {**env, "EDGECNN_TARGETS": str(tmp_path)}
    listed = _run([bin_ / "edgecnn", "targets"], work, env)
    assert "my-board" in listed and "jetson-orin-nano" in listed
    threads = _run([vpy, "-c", "from edgecnn.targets import resolve_target as r; "
                               "print(r('x86-cpu').threads, r('my-board').threads)"], work, env)
    assert threads.split() == ["7", "3"]


@pytest.mark.slow
@pytest.mark.data
def test_demo_runs_from_the_wheel(wheel_venv):
    vpy, bin_, work, env = wheel_venv
    out = _run([bin_ / "edgecnn", "demo", "--samples", "200", "--out", work / "demo"], work, env,
               timeout=900)
    assert "ONNX Runtime" in out and "PyTorch" in out
