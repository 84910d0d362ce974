"""The embeddable runtime on a real ONNX bundle: no torch/onnx/tensorflow, input checks, predict."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

import edgecnn.runtime as rt  # noqa: E402
from edgecnn.errors import BundleError, ChecksumError, DataError, InputError  # noqa: E402


def test_runtime_imports_no_torch_onnx_or_tensorflow(tiny_bundle):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        import edgecnn.runtime as rt
        with rt.load({str(tiny_bundle)!r}) as s:
            out = s.run(np.zeros((3, 3, 16, 16), np.float32))
            assert out.shape == (3, 5), out.shape
            preds = s.predict([np.zeros((16, 16, 3), np.uint8)], top_k=2)
            assert len(preds[0]) == 2
        heavy = [m for m in ('torch', 'tensorflow', 'onnx', 'onnxscript') if m in sys.modules]
        assert not heavy, heavy
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_run_matches_dynamic_batch(tiny_bundle):
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    with rt.load(tiny_bundle, threads=1) as s:
        assert s.input_shape == (-1, 3, 16, 16)
        full = s.run(x)
        ones = np.concatenate([s.run(x[i:i + 1]) for i in range(4)])
    assert full.shape == (4, 5) and full.dtype == np.float32
    np.testing.assert_allclose(full, ones, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("batch,match", [
    (np.zeros((2, 3, 16, 16), np.float64), "dtype float64 is wrong: expected float32"),
    (np.zeros((2, 3, 32, 32), np.float32), r"expected \(N, 3, 16, 16\)"),
    (np.zeros((3, 16, 16), np.float32), r"expected \(N, 3, 16, 16\)"),
    (np.zeros((2, 16, 16, 3), np.float32), r"expected \(N, 3, 16, 16\)"),
    (np.zeros((0, 3, 16, 16), np.float32), "empty"),
    ([[1.0]], "numpy array"),
])
def test_wrong_input(tiny_bundle, batch, match):
    with rt.load(tiny_bundle) as s, pytest.raises(InputError, match=match):
        s.run(batch)


def test_predict_on_paths_pil_and_uint8(tiny_bundle, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    arr = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(arr).save(path)
    with rt.load(tiny_bundle) as s:
        by_path, by_pil, by_array = s.predict([path, Image.fromarray(arr), arr], top_k=3)
        big = s.predict([rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)], top_k=5)[0]
        with pytest.raises(DataError, match="uint8"):
            s.predict([arr.astype(np.float32)])
    assert [p.index for p in by_path] == [p.index for p in by_pil] == [p.index for p in by_array]
    assert by_path[0].probability == pytest.approx(by_array[0].probability, rel=1e-5)
    assert by_path[0].label.startswith("class_")
    assert len(big) == 5 and sum(p.probability for p in big) == pytest.approx(1.0, abs=1e-5)
    assert big[0].probability >= big[-1].probability


def test_missing_bundle_file(tiny_bundle):
    (tiny_bundle / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing"):
        rt.load(tiny_bundle)


def test_checksum_mismatch(tiny_bundle):
    data = bytearray((tiny_bundle / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tiny_bundle / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum"):
        rt.load(tiny_bundle)


def test_missing_bundle_and_unknown_artifact(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        rt.load(tmp_path / "nope")
    with pytest.raises(BundleError, match="no artifact tensorrt"):
        rt.load(tiny_bundle, backend="tensorrt")


def test_manifest_describes_the_onnx_artifact(tiny_bundle):
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    (a,) = m["artifacts"]
    assert a["file"] == "model.onnx" and a["backend"] == "onnxruntime" and a["precision"] == "fp32"
    assert a["inputs"][0] == {"name": "input", "shape": [-1, 3, 16, 16], "dtype": "float32",
                              "layout": "NCHW", "quant": None}
    assert a["outputs"][0]["shape"] == [-1, 5]
    assert a["details"]["parity"]["batch_sizes"] == [8, 1]
    for tool in ("torch", "onnx", "onnxscript", "onnxruntime"):
        assert tool in m["tool_versions"]
