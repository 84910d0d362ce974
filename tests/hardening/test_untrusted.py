"""Untrusted bundles: everything is checked before a backend sees a byte, nothing is executed,
and nothing outside the bundle folder is read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _hardening_lib import child_env

import edgecnn.runtime as rt
from edgecnn.bundle import Bundle
from edgecnn.errors import BundleError, ChecksumError, ManifestError


@pytest.fixture
def bundle(tiny_bundle, tmp_path) -> Path:
    out = tmp_path / "b"
    shutil.copytree(tiny_bundle, out)
    return out


def _edit_manifest(bundle: Path, edit) -> None:
    m = json.loads((bundle / "manifest.json").read_text())
    edit(m)
    (bundle / "manifest.json").write_text(json.dumps(m))


def _onnx(m: dict) -> dict:
    return next(a for a in m["artifacts"] if a["file"] == "model.onnx")


def test_artifact_of_other_size_refused_before_hashing(bundle):
    with open(bundle / "model.onnx", "ab") as f:
        f.write(b"\0" * 10)
    with pytest.raises(ChecksumError, match="bytes, the manifest says"):
        rt.load(bundle, backend="onnxruntime")
    # absurdly large (sparse, so it costs no disk): refused from its size, never read
    huge = bundle / "model.onnx"
    os.truncate(huge, 64 << 30)
    with pytest.raises(ChecksumError, match=f"is {64 << 30} bytes"):
        rt.load(bundle, backend="onnxruntime")


def test_same_size_damage_is_caught_by_the_checksum(bundle):
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match its manifest checksum"):
        rt.load(bundle, backend="onnxruntime")


@pytest.mark.parametrize("name", ["../b/model.onnx", "/etc/passwd", "sub/model.onnx", "..", ".",
                                  ".hidden", "model.onnx\x00.txt", "..\\model.onnx", ""])
def test_artifact_names_that_leave_the_folder_are_refused(bundle, name):
    def edit(m):
        _onnx(m)["file"] = name

    _edit_manifest(bundle, edit)
    with pytest.raises(ManifestError):
        rt.load(bundle, backend="onnxruntime")


def test_symlinks_are_refused(bundle, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.move(bundle / "model.onnx", outside)
    os.symlink(outside, bundle / "model.onnx")  # same bytes, but outside the bundle folder
    with pytest.raises(BundleError, match="symbolic link"):
        rt.load(bundle, backend="onnxruntime")
    real = tmp_path / "manifest.json"
    shutil.move(bundle / "manifest.json", real)
    os.symlink(real, bundle / "manifest.json")
    with pytest.raises(ManifestError, match="symbolic link"):
        Bundle.open(bundle)


def test_special_files_are_not_read(bundle):
    """A FIFO would block a reader forever; a folder is not a file."""
    (bundle / "model.onnx").unlink()
    os.mkfifo(bundle / "model.onnx")
    with pytest.raises(BundleError, match="missing"):
        rt.load(bundle, backend="onnxruntime")
    (bundle / "manifest.json").unlink()
    os.mkfifo(bundle / "manifest.json")
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(bundle)


def test_oversized_manifest_is_refused_unread(bundle):
    os.truncate(bundle / "manifest.json", 5 << 20)
    with pytest.raises(ManifestError, match="larger than"):
        Bundle.open(bundle)


BAD_MANIFESTS = {
    "schema_version 99": lambda m: m.update(schema_version=99),
    "no artifacts key": lambda m: m.pop("artifacts"),
    "labels not a list": lambda m: m.update(labels="cat"),
    "sha256 not hex": lambda m: _onnx(m).update(sha256="z" * 64),
    "size_bytes a string": lambda m: _onnx(m).update(size_bytes="12"),
    "input shape of strings": lambda m: _onnx(m)["inputs"][0].update(shape=["1", "a"]),
    "unknown backend": lambda m: _onnx(m).update(backend="pickle"),
}


def test_bad_manifests_refused_before_any_backend_is_imported(bundle, tmp_path):
    """Each bad manifest fails in Bundle.open/load with ManifestError or BundleError, and the
    backend library (onnxruntime) was never imported: it saw nothing."""
    cases = {}
    for what, edit in BAD_MANIFESTS.items():
        b = tmp_path / what.replace(" ", "_")
        shutil.copytree(bundle, b)
        _edit_manifest(b, edit)
        cases[what] = str(b)
    code = (
        "import json, sys\n"
        "import edgecnn.runtime as rt\n"
        "from edgecnn.errors import BundleError\n"
        "out = {}\n"
        f"for what, path in json.loads({json.dumps(json.dumps(cases))}).items():\n"
        "    try:\n"
        "        rt.load(path)\n"
        "        out[what] = 'loaded'\n"
        "    except BundleError as exc:\n"
        "        out[what] = type(exc).__name__\n"
        "out['onnxruntime imported'] = 'onnxruntime' in sys.modules\n"
        "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=child_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result.pop("onnxruntime imported") is False, result
    assert set(result) == set(BAD_MANIFESTS)
    assert all(v in ("ManifestError", "BundleError") for v in result.values()), result


def test_nothing_in_a_bundle_is_executed(bundle, tmp_path):
    """Python files in the bundle and a manifest naming them are never imported, even when
    the CLI runs from inside the bundle folder."""
    marker = tmp_path / "executed"
    payload = f"open({str(marker)!r}, 'w').write('x')\n"
    for name in ("evil.py", "sitecustomize.py", "usercustomize.py", "__init__.py", "edgecnn.py"):
        (bundle / name).write_text(payload)

    def edit(m):
        m["source"] = {"factory": "evil:make", "module": "evil", "weights": "evil.py"}

    _edit_manifest(bundle, edit)
    from PIL import Image

    image = tmp_path / "shirt.png"
    Image.new("L", (28, 28), 128).save(image)
    cli = Path(sys.executable).with_name("edgecnn")
    for args in (["info", "."], ["predict", ".", str(image), "--backend", "onnxruntime"]):
        proc = subprocess.run([str(cli), *args], cwd=bundle, env=child_env(),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"edgecnn {args[0]}: {proc.stderr[-2000:]}"
    with rt.load(bundle, backend="onnxruntime") as s:
        s.run(__import__("numpy").zeros([1 if d == -1 else d for d in s.input_shape], "float32"))
    assert not marker.exists(), "a file from the bundle was executed"
