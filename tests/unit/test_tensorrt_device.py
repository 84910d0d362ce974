"""Engine build and run on a machine with TensorRT and an NVIDIA GPU (skipped elsewhere)."""

import importlib.util

import numpy as np
import pytest

from edgecnn.options import ExportOptions

pytestmark = [pytest.mark.tensorrt, pytest.mark.gpu]


def _require_device():
    if importlib.util.find_spec("tensorrt") is None:
        pytest.skip("TensorRT is not installed (pip install 'edgecnn[tensorrt]' on a GPU machine)")
    from edgecnn.platform_info import probe

    if probe().gpu is None:
        pytest.skip("no NVIDIA GPU visible to nvidia-smi / cuda-python")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_prepare_build_run_matches_onnxruntime(tmp_path, precision):
    _require_device()
    import edgecnn.runtime as rt
    from edgecnn.pipeline import export
    from edgecnn.tensorrt.builder import build_bundle

    out = tmp_path / "lenet5"
    export("lenet5", ExportOptions(target="tensorrt", precision=precision, out=out, parity_samples=2))
    build_bundle(out, precision)  # again, through `edgecnn build`: reuses the timing cache
    x = np.random.default_rng(0).standard_normal((5, 1, 32, 32)).astype(np.float32)
    with rt.load(out, backend="onnxruntime", precision=precision) as ref, \
            rt.load(out, backend="tensorrt", precision=precision) as trt_sess:
        assert trt_sess.max_batch() == 32
        tol = 1e-3 if precision == "fp32" else 3e-2
        np.testing.assert_allclose(trt_sess.run(x), ref.run(x), atol=tol, rtol=tol)
        assert trt_sess.run(x[:1]).shape == (1, 10)
        meta = trt_sess.metadata
        assert meta.precision == precision and meta.strongly_typed


def test_cuda_graph_batch1_matches_plain_run(tmp_path):
    _require_device()
    import edgecnn.runtime as rt
    from edgecnn.pipeline import export

    out = tmp_path / "lenet5"
    export("lenet5", ExportOptions(target="tensorrt", precision="fp16", out=out, parity_samples=2))
    x = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
    with rt.load(out, backend="tensorrt", cuda_graph=True) as g, rt.load(out, backend="tensorrt") as p:
        first = g.run(x)
        np.testing.assert_array_equal(first, g.run(x))  # replayed graph
        np.testing.assert_allclose(first, p.run(x), atol=1e-3)
