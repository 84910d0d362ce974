"""BundleWriter: staging, carry-over by hard link, atomic swap, and a live bundle kept intact."""

import pytest

from edgecnn.bundle import Bundle, BundleWriter
from edgecnn.errors import BundleError
from edgecnn.manifest import Manifest, Preprocess, TensorSpec

IO = ([TensorSpec("input", [-1, 1, 4, 4], "float32", "NCHW")], [TensorSpec("logits", [-1, 2])])


def _manifest():
    return Manifest(model="m", preprocess=Preprocess(size=[4, 4], channels=1, mean=[0.0],
                                                      std=[1.0], channel_order="L"),
                    labels=["a", "b"])


def _write(out, name, data, fail=False):
    with BundleWriter(out, _manifest()) as w:
        w.path_for(name).write_bytes(data)
        w.add_artifact(name, "onnxruntime", "fp32", *IO)
        if fail:
            raise RuntimeError("export failed halfway")


def test_new_bundle_then_added_artifact_keeps_the_first(tmp_path):
    out = tmp_path / "b"
    _write(out, "model.onnx", b"one")
    with BundleWriter(out, Bundle.open(out).manifest) as w:
        assert w.read_path("model.onnx").read_bytes() == b"one"  # carried over
        w.path_for("model.int8.onnx").write_bytes(b"two")
        w.add_artifact("model.int8.onnx", "onnxruntime", "int8", *IO)
    b = Bundle.open(out)
    b.verify()
    assert sorted(a.file for a in b.manifest.artifacts) == ["model.int8.onnx", "model.onnx"]
    assert not list(tmp_path.glob(".b.*")), "staging folders must not be left behind"


def test_rewriting_a_carried_file_never_touches_the_live_bundle(tmp_path):
    out = tmp_path / "b"
    _write(out, "model.onnx", b"original")
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(RuntimeError):
        # the staged model.onnx is a hard link to the live one: writing through it in place
        # would change the live bundle; path_for must break the link first
        with BundleWriter(out, Bundle.open(out).manifest) as w:
            with open(w.path_for("model.onnx"), "wb") as f:
                f.write(b"half-writ")
            raise RuntimeError("killed")
    assert (out / "model.onnx").read_bytes() == b"original"
    assert (out / "manifest.json").read_bytes() == before
    Bundle.open(out).verify()


def test_failed_export_leaves_previous_bundle(tmp_path):
    out = tmp_path / "b"
    _write(out, "model.onnx", b"v1")
    with pytest.raises(RuntimeError):
        _write(out, "model.onnx", b"v2", fail=True)
    assert (out / "model.onnx").read_bytes() == b"v1"
    Bundle.open(out).verify()


def test_refuses_to_replace_a_folder_that_is_not_a_bundle(tmp_path):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(BundleError, match="not an edgecnn bundle"):
        _write(out, "model.onnx", b"x")
    assert (out / "holiday.jpg").read_bytes() == b"precious"
