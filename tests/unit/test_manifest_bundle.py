"""Manifest round trips and the atomic BundleWriter (stdlib + real files, no torch)."""

from __future__ import annotations

import json

import pytest

from edgecnn.bundle import Bundle, BundleWriter, sha256_file
from edgecnn.errors import BundleError, ChecksumError, ManifestError
from edgecnn.manifest import Manifest, Preprocess, TensorSpec


def _manifest(model="m") -> Manifest:
    return Manifest(model=model, preprocess=Preprocess(size=[8, 8], channels=1, mean=[0.5],
                                                       std=[0.25], channel_order="L"),
                    labels=["a", "b"], source={"kind": "zoo", "model": model})


IN = [TensorSpec("input", [-1, 1, 8, 8], layout="NCHW")]
OUT = [TensorSpec("logits", [-1, 2])]


def _write(out, payload=b"v1", model="m", extra=None, keep=True):
    with BundleWriter(out, _manifest(model), keep_existing=keep) as w:
        w.path_for("model.onnx").write_bytes(payload)
        w.add_artifact("model.onnx", "onnxruntime", "fp32", IN, OUT, details={"k": 1})
        if extra:
            w.write_text(extra, "x")
    return out


def test_manifest_json_round_trip():
    m = _manifest()
    m.artifacts = []
    again = Manifest.from_json(m.to_json())
    assert again == m
    assert again.num_classes == 2


def test_writer_commits_manifest_and_checksums(tmp_path):
    out = _write(tmp_path / "b")
    b = Bundle.open(out)
    a = b.find("onnxruntime", "fp32")
    assert a.sha256 == sha256_file(out / "model.onnx")
    assert a.size_bytes == 2 and a.details == {"k": 1}
    assert b.manifest.created  # stamped on commit
    b.verify()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_failed_write_leaves_earlier_bundle_untouched(tmp_path):
    out = _write(tmp_path / "b", b"old")
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with BundleWriter(out, _manifest("other"), keep_existing=False) as w:
            w.path_for("model.onnx").write_bytes(b"new")
            w.add_artifact("model.onnx", "onnxruntime", "fp32", IN, OUT)
            raise RuntimeError("boom")
    assert (out / "manifest.json").read_bytes() == before
    assert (out / "model.onnx").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # staging removed


def test_keep_existing_carries_files_over_and_fresh_drops_them(tmp_path):
    out = _write(tmp_path / "b", extra="notes.txt")
    _write(out, b"v2", keep=True)
    assert (out / "notes.txt").is_file()
    assert (out / "model.onnx").read_bytes() == b"v2"
    _write(out, b"v3", keep=False)
    assert not (out / "notes.txt").exists()


def test_open_missing_folder_and_missing_manifest(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        Bundle.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no manifest.json"):
        Bundle.open(tmp_path / "empty")


def test_missing_artifact_file(tmp_path):
    out = _write(tmp_path / "b")
    (out / "model.onnx").unlink()
    b = Bundle.open(out)
    with pytest.raises(BundleError, match="missing"):
        b.artifact_path(b.find())


def test_checksum_mismatch(tmp_path):
    out = _write(tmp_path / "b")
    (out / "model.onnx").write_bytes(b"tampered")
    b = Bundle.open(out)
    with pytest.raises(ChecksumError, match="does not match its manifest checksum"):
        b.verify()


def test_unsafe_artifact_name_in_manifest(tmp_path):
    out = _write(tmp_path / "b")
    data = json.loads((out / "manifest.json").read_text())
    data["artifacts"][0]["file"] = "../evil.onnx"
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="plain file name"):
        Bundle.open(out)


def test_unwritable_output_under_a_file(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(BundleError):
        _write(blocker / "bundle")


def test_refuses_to_replace_a_non_bundle_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(BundleError, match="not an edgecnn bundle"):
        _write(out)
    assert (out / "thesis.tex").read_text() == "precious"


def test_find_names_what_the_bundle_has(tmp_path):
    b = Bundle.open(_write(tmp_path / "b"))
    with pytest.raises(BundleError, match="onnxruntime:fp32"):
        b.find("tensorrt", "int8")
