"""Resource limits seen through a real Session: inputs the artifact cannot take, outputs that
do not match the manifest, and images too small or too large to decode."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

import edgecnn.runtime as rt
from edgecnn.errors import BackendUnavailableError, DataError, InputError


@pytest.fixture(scope="module")
def session(tiny_bundle):
    with rt.load(tiny_bundle, backend="onnxruntime", threads=1) as s:
        yield s


@pytest.mark.parametrize("make, match", [
    (lambda c, h, w: np.zeros((0, c, h, w), np.float32), "empty"),
    (lambda c, h, w: np.zeros((1, c, h + 1, w), np.float32), "shape"),
    (lambda c, h, w: np.zeros((c, h, w), np.float32), "shape"),
    (lambda c, h, w: np.zeros((1, c, h, w), np.float64), "float32"),
    (lambda c, h, w: np.zeros((1, c, h, w), np.uint8), "float32"),
    (lambda c, h, w: [[0.0]], "numpy array"),
])
def test_inputs_the_artifact_cannot_take(session, make, match):
    _, c, h, w = session.input_shape
    with pytest.raises(InputError, match=match):
        session.run(make(c, h, w))


def test_output_that_disagrees_with_the_manifest_is_refused(tiny_bundle, tmp_path):
    """A model swapped for one with another head (and re-signed) loads, but its logits have
    the wrong width: run() refuses them instead of returning them."""
    b = tmp_path / "b"
    shutil.copytree(tiny_bundle, b)
    m = json.loads((b / "manifest.json").read_text())
    for a in m["artifacts"]:
        a["outputs"][0]["shape"] = [-1, 7]
    m["labels"] = m["labels"][:7]
    (b / "manifest.json").write_text(json.dumps(m))
    with rt.load(b, backend="onnxruntime", threads=1) as s:
        x = np.zeros([2 if d == -1 else d for d in s.input_shape], np.float32)
        with pytest.raises(BackendUnavailableError, match=r"output of shape \(2, 10\)"):
            s.run(x)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims width x height; decoding it would need width*height bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_images_too_small_or_too_large(session, tmp_path):
    with pytest.raises(DataError, match="zero size|not HxW"):
        session.predict([np.zeros((0, 0), np.uint8)])
    big = tmp_path / "big.png"
    _png_header_only(big, 50_000, 50_000)  # 2.5 gigapixels, 57 bytes on disk
    with pytest.raises(DataError, match="more than"):
        session.predict([str(big)])
    with pytest.raises(DataError, match="no images"):
        session.predict([])


def test_large_batches_stay_correct(session):
    """A batch far above the usual sizes runs and equals the same images run one by one."""
    _, c, h, w = session.input_shape
    x = np.random.default_rng(3).standard_normal((512, c, h, w), dtype=np.float32)
    whole = session.run(x)
    one_by_one = np.concatenate([session.run(x[i:i + 1]) for i in range(0, 512, 37)])
    np.testing.assert_allclose(whole[::37], one_by_one, rtol=1e-5, atol=1e-5)
