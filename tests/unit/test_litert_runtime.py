"""LiteRTSession on real .tflite files (converted once per module with litert-torch)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import BackendUnavailableError, ChecksumError, InputError
from edgecnn.manifest import Artifact, Manifest, Preprocess

pytest.importorskip("ai_edge_litert", reason="needs ai-edge-litert (pip install 'edgecnn[litert]')")

from edgecnn.runtime.litert import (LiteRTSession, check_tflite_file,  # noqa: E402
                                    compiled_model_available, litert_provider)

pytestmark = pytest.mark.tflite
APIS = ["compiled", "interpreter"]


def test_provider_is_litert_and_found_without_importing_it():
    assert litert_provider() == "ai_edge_litert.interpreter"


def test_quantize_and_dequantize_use_the_tensor_parameters():
    detail = {"dtype": np.int8, "quantization": (0.5, -3)}
    x = np.array([-100.0, -1.0, 0.0, 0.26, 10.0, 100.0], np.float32)
    q = LiteRTSession._quantize(x, detail)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, -5, -3, -2, 17, 127]  # round(x/0.5) - 3, clipped to int8
    back = LiteRTSession._dequantize(q, detail)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, [-62.5, -1.0, 0.0, 0.5, 10.0, 65.0])
    u8 = {"dtype": np.uint8, "quantization": (1 / 255, 0)}
    assert LiteRTSession._quantize(np.array([0.0, 1.0, 2.0], np.float32), u8).tolist() == [0, 255, 255]
    f32 = {"dtype": np.float32, "quantization": (0.0, 0)}
    assert LiteRTSession._quantize(x, f32) is x


def test_dequantize_table_holds_the_same_logits_as_the_arithmetic():
    from edgecnn.runtime.litert import _dequantize_table

    for detail in ({"dtype": np.int8, "quantization": (0.0371, -7)},
                   {"dtype": np.uint8, "quantization": (0.5, 128)},
                   {"dtype": np.int8, "quantization": (0.0, 0)}):
        codes = np.arange(256, dtype=np.uint8).view(detail["dtype"])
        table = _dequantize_table(detail)
        np.testing.assert_array_equal(np.take(table, codes.view(np.uint8)),
                                      LiteRTSession._dequantize(codes, detail))
    assert _dequantize_table({"dtype": np.float32, "quantization": (0.0, 0)}) is None


# -- sessions on a converted model ---------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A conv net converted to NHWC fp32 .tflite, plus its manifest entry."""
    pytest.importorskip("litert_torch", reason="needs litert-torch to make the test model")
    import torch
    import torch.nn as nn

    from edgecnn.backends.tflite import tensor_specs
    from edgecnn.backends.tflite_convert import convert_float

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                           nn.Flatten(), nn.Linear(8 * 4 * 4, 5)).eval()
    root = tmp_path_factory.mktemp("litert")
    path = root / "model.fp32.tflite"
    convert_float(module, (3, 8, 8), "NHWC", path)
    inputs, outputs, batch = tensor_specs(path, "NHWC")
    assert batch == 1
    art = Artifact(file=path.name, sha256="0" * 64, backend="tflite", precision="fp32",
                   inputs=inputs, outputs=outputs)
    man = Manifest(model="tiny", labels=[str(i) for i in range(5)],
                   preprocess=Preprocess(size=[8, 8], channels=3), artifacts=[art])
    return module, man, art, path


def _ref(module, x):
    import torch

    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("api", APIS)
def test_nchw_input_to_nhwc_model(tiny, api):
    module, man, art, path = tiny
    x = np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with LiteRTSession(man, art, str(path), threads=2, api=api) as s:
        assert s.api == api
        assert s.input_shape == (-1, 3, 8, 8)  # the caller always speaks NCHW
        assert s.threads == 2
        np.testing.assert_allclose(s.run(x), _ref(module, x), atol=1e-5)


def test_compiled_model_is_the_default(tiny):
    _, man, art, path = tiny
    assert compiled_model_available()  # ai-edge-litert 2.x ships it
    with LiteRTSession(man, art, str(path)) as s:
        assert s.api == "compiled" and s.api_note is None
        assert type(s.raw).__name__ == "CompiledModel"
    with LiteRTSession(man, art, str(path), api="interpreter") as s:
        assert type(s.raw).__name__ == "Interpreter"
    with pytest.raises(ValueError, match="api must be"):
        LiteRTSession(man, art, str(path), api="gpu")


def test_fp32_nhwc_model_takes_the_nchw_batch_as_it_is(tiny, monkeypatch):
    """CompiledModel: a float NHWC file runs as a copy with a TRANSPOSE in front, so the
    caller's NCHW batch is written to LiteRT as it is; where that copy cannot be made, the
    file runs with the layout copied in numpy, with the same logits."""
    import edgecnn.runtime.litert_float_input as lfi

    module, man, art, path = tiny
    x = np.random.default_rng(2).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with LiteRTSession(man, art, str(path), threads=2, api="compiled") as s:
        assert s._runner.takes_nchw is True and s.float_input_note is None
        shape = s._runner._ins[0].get_tensor_details()["shape"]
        assert tuple(int(d) for d in shape)[1:] == (3, 8, 8)  # NCHW
        y = s.run(x)
        np.testing.assert_allclose(y, _ref(module, x), atol=1e-5)
        np.testing.assert_array_equal(s.run(x[:1]), y[:1])
    with pytest.raises(ValueError, match="float32 already"):
        lfi.float_input_model(path.read_bytes())  # nothing to do without the layout change

    def broken(data, nchw=False):
        raise ValueError("no TRANSPOSE here")

    monkeypatch.setattr(lfi, "float_input_model", broken)
    with LiteRTSession(man, art, str(path), threads=2, api="compiled") as s:
        assert s._runner.takes_nchw is False and "no TRANSPOSE here" in s.float_input_note
        np.testing.assert_array_equal(s.run(x), y)


@pytest.mark.parametrize("api", APIS)
def test_steady_state_calls_skip_the_routing_with_the_same_results(tiny_int8, api):
    """A batch like the last one that went to LiteRT as it was runs straight there; another
    size, dtype or layout takes the checked way again, and every answer stays the same."""
    module, man, art, path = tiny_int8
    rng = np.random.default_rng(7)
    x1, x3 = (rng.standard_normal((n, 3, 8, 8)).astype(np.float32) for n in (1, 3))
    with LiteRTSession(man, art, str(path), threads=2, api=api) as s, \
            LiteRTSession(man, art, str(path), threads=2, api=api) as ref:
        first = s.run(x1)
        if api == "compiled":
            assert s._fast is not None and s._fast[1] == x1.shape  # float NCHW, as it is
        else:
            assert s._fast is None  # the interpreter takes a converted copy: always checked
        for x in (x1, x3, x1, x3, x3[:1]):
            ref._fast = None  # the reference always takes the checked way
            np.testing.assert_array_equal(s.run(x), ref.run(x))
        np.testing.assert_array_equal(s.run(x1), first)
        q = art.inputs[0].quant
        xq = np.clip(np.rint(x3.transpose(0, 2, 3, 1) / q.scale) + q.zero_point, -128, 127)
        xq = xq.astype(np.int8)
        for x in (xq, xq, x3, xq[:1], xq):  # the model's own int8 input and float, mixed
            ref._fast = None
            np.testing.assert_array_equal(s.run(x), ref.run(x))
        assert s._fast is not None and s._fast[0] == np.int8
        with pytest.raises(InputError, match="int8 input shape"):
            s.run(np.ascontiguousarray(xq.transpose(0, 3, 1, 2)))  # still checked
        with pytest.raises(InputError, match="dtype"):
            s.run(xq.astype(np.int16))


def test_float_input_copy_packs_every_buffer_through_numpy(tiny, monkeypatch):
    """The flatbuffer object API packs a buffer held as bytes one byte at a time (an fp16
    resnet18 from litert-torch: 11 s); the copy hands every buffer over as a numpy array."""
    from ai_edge_litert.tools import flatbuffer_utils

    import edgecnn.runtime.litert_float_input as lfi

    _, _, _, path = tiny
    real_read, real_pack = (flatbuffer_utils.read_model_from_bytearray,
                            flatbuffer_utils.convert_object_to_bytearray)
    packed = []

    def read_as_bytes(data):  # the buffers as litert-torch's fp16 files come back
        model = real_read(data)
        for b in model.buffers:
            if b.data is not None:
                b.data = bytearray(np.asarray(b.data, np.uint8).tobytes())
        return model

    def pack(model):
        packed.extend(type(b.data).__name__ for b in model.buffers if b.data is not None)
        return real_pack(model)

    monkeypatch.setattr(flatbuffer_utils, "read_model_from_bytearray", read_as_bytes)
    monkeypatch.setattr(flatbuffer_utils, "convert_object_to_bytearray", pack)
    data = lfi.float_input_model(path.read_bytes(), nchw=True)
    assert packed and set(packed) == {"ndarray"}
    monkeypatch.undo()
    assert data == lfi.float_input_model(path.read_bytes(), nchw=True)  # the same model


def test_one_session_from_many_threads(tiny):
    from concurrent.futures import ThreadPoolExecutor

    module, man, art, path = tiny
    xs = [np.random.default_rng(i).standard_normal((1 + i % 3, 3, 8, 8)).astype(np.float32)
          for i in range(24)]
    with LiteRTSession(man, art, str(path)) as s, ThreadPoolExecutor(6) as pool:
        got = list(pool.map(s.run, xs))
    for x, y in zip(xs, got):
        np.testing.assert_allclose(y, _ref(module, x), atol=1e-5)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("mode", ["auto", "loop"])
def test_batches_on_a_batch_1_graph(tiny, mode, api):
    module, man, art, path = tiny
    x = np.random.default_rng(1).standard_normal((7, 3, 8, 8)).astype(np.float32)
    with LiteRTSession(man, art, str(path), batch_mode=mode, api=api) as s:
        y = s.run(x)
        assert y.shape == (7, 5)
        np.testing.assert_allclose(y, _ref(module, x), atol=1e-5)
        np.testing.assert_allclose(s.run(x[:1]), y[:1], atol=1e-6)  # back to batch 1
        if mode == "auto":  # the flatten's reshape is traced at batch 1: resizing must be refused
            assert s._resize_ok is False


def test_wrong_input_is_a_clear_error(tiny):
    _, man, art, path = tiny
    with LiteRTSession(man, art, str(path)) as s:
        with pytest.raises(InputError, match=r"expected \(N, 3, 8, 8\)"):
            s.run(np.zeros((1, 8, 8, 3), np.float32))  # NHWC handed in by mistake
        with pytest.raises(InputError, match="float32"):
            s.run(np.zeros((1, 3, 8, 8), np.float64))


@pytest.mark.parametrize("api", [None, "compiled", "interpreter"])
@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_damaged_file_is_a_clear_error(tiny, tmp_path, damage, api):
    _, man, art, path = tiny
    bad = tmp_path / "model.fp32.tflite"
    data = path.read_bytes()
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        bad.write_bytes(b"\x00" * 64 + data[64:])
    else:
        bad.write_bytes(b"")
    with pytest.raises(BackendUnavailableError, match="model.fp32.tflite"):
        LiteRTSession(man, art, str(bad), api=api)


def test_check_tflite_file_accepts_the_real_one(tiny):
    check_tflite_file(str(tiny[3]))


def test_load_verifies_checksum_before_litert_sees_the_file(tiny, tmp_path):
    from edgecnn.bundle import BundleWriter
    import edgecnn.runtime as rt

    _, man, art, path = tiny
    fresh = Manifest(model="tiny", labels=man.labels, preprocess=man.preprocess)
    with BundleWriter(tmp_path / "b", fresh) as w:
        shutil.copy(path, w.path_for(art.file))
        w.add_artifact(art.file, "tflite", "fp32", art.inputs, art.outputs)
    with rt.load(tmp_path / "b") as s:
        assert type(s).__name__ == "LiteRTSession"
    f = Path(tmp_path / "b" / art.file)
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ChecksumError):
        rt.load(tmp_path / "b")
    with pytest.raises(ChecksumError, match="manifest says"):
        rt.load(tmp_path / "b", verify=False)  # the size check needs no hashing
    from edgecnn.runtime.litert import LiteRTSession

    with pytest.raises(BackendUnavailableError):  # and LiteRT itself refuses the damaged file
        LiteRTSession(man, art, str(f))


# -- int8 without wrapper cost: buffers made once, the caller's own int8 tensor as it is -------

@pytest.fixture(scope="module")
def tiny_int8(tiny, tmp_path_factory):
    """The same conv net as full-integer int8 .tflite (int8 NHWC input with scale/zero point)."""
    from edgecnn.backends.tflite import tensor_specs
    from edgecnn.backends.tflite_convert import convert_int8

    module, man, _, _ = tiny
    path = tmp_path_factory.mktemp("litert8") / "model.int8.tflite"
    calib = np.random.default_rng(3).standard_normal((16, 3, 8, 8)).astype(np.float32)
    convert_int8(module, (3, 8, 8), "NHWC", calib, path)
    inputs, outputs, _ = tensor_specs(path, "NHWC")
    assert inputs[0].dtype == "int8" and inputs[0].quant is not None
    art = Artifact(file=path.name, sha256="0" * 64, backend="tflite", precision="int8",
                   inputs=inputs, outputs=outputs)
    return module, Manifest(model="tiny", labels=man.labels, preprocess=man.preprocess,
                            artifacts=[art]), art, path


@pytest.mark.parametrize("api", APIS)
def test_int8_float_and_native_inputs_agree_and_reuse_buffers(tiny_int8, api):
    module, man, art, path = tiny_int8
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 3, 8, 8)).astype(np.float32)
    q = art.inputs[0].quant
    with LiteRTSession(man, art, str(path), threads=2, api=api) as s:
        s._float_runner = False  # numpy quantisation (the QUANTIZE-op path: the next test)
        y_float = s.run(x)
        staged = s._runner.staging(np.int8)
        # the caller's own tensor: int8 NHWC, quantised with the input's scale and zero point
        xq = np.clip(np.rint(x.transpose(0, 2, 3, 1) / q.scale) + q.zero_point, -128, 127)
        xq = xq.astype(np.int8)
        np.testing.assert_array_equal(staged, xq)  # what the float path quantised, exactly
        np.testing.assert_array_equal(s.run(xq), y_float)
        cos = float(np.sum(y_float * _ref(module, x)) /
                    (np.linalg.norm(y_float) * np.linalg.norm(_ref(module, x))))
        assert cos > 0.95
        s.run(rng.standard_normal((1, 3, 8, 8)).astype(np.float32))
        assert s._runner.staging(np.int8) is staged  # made once, reused every call
        assert s.run(np.concatenate([xq, xq])).shape == (2, 5)  # native batches too
        with pytest.raises(InputError, match=r"int8 input shape \(1, 3, 8, 8\) is wrong: .*"
                                             r"\(N, 8, 8, 3\) \(NHWC\)"):
            s.run(xq.transpose(0, 3, 1, 2).copy())  # int8 but NCHW: refused, not guessed
        with pytest.raises(InputError, match="expected float32 .* or this artifact's own int8"):
            s.run(xq.astype(np.uint8))


def test_int8_float_input_runs_through_a_quantize_op_in_the_model(tiny_int8):
    """CompiledModel: float input goes to a copy of the model with a QUANTIZE op in front
    (made in memory on the first float call), with the numpy path's results; the model's own
    int8 input still runs the file as it is."""
    from edgecnn.runtime.litert import _CompiledRunner

    module, man, art, path = tiny_int8
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 3, 8, 8)).astype(np.float32)
    q = art.inputs[0].quant
    with LiteRTSession(man, art, str(path), threads=2, api="compiled") as s, \
            LiteRTSession(man, art, str(path), threads=2, api="compiled") as numpy_path:
        numpy_path._float_runner = False
        assert s._float_runner is None  # not made until a float call needs it
        y = s.run(x)
        assert isinstance(s._float_runner, _CompiledRunner) and s.float_input_note is None
        # the file is NHWC: the copy takes the caller's NCHW batch as it is (QUANTIZE, then a
        # TRANSPOSE to NHWC in the model), so the session stages nothing for it
        assert s._float_runner.takes_nchw is True
        shape = s._float_runner._ins[0].get_tensor_details()["shape"]
        assert tuple(int(d) for d in shape)[1:] == (3, 8, 8)  # NCHW
        y_np = numpy_path.run(x)
        # LiteRT's QUANTIZE and numpy's rint agree but for ties: the logits stay within a few
        # output steps, and the prediction is the same
        assert np.abs(y - y_np).max() <= 4 * art.outputs[0].quant.scale
        assert (y.argmax(1) == y_np.argmax(1)).all()
        np.testing.assert_allclose(np.concatenate([s.run(x[i:i + 1]) for i in range(3)]), y)
        xq = np.clip(np.rint(x.transpose(0, 2, 3, 1) / q.scale) + q.zero_point, -128, 127)
        np.testing.assert_array_equal(s.run(xq.astype(np.int8)), numpy_path.run(x))
        cos = float(np.sum(y * _ref(module, x)) /
                    (np.linalg.norm(y) * np.linalg.norm(_ref(module, x))))
        assert cos > 0.95



def test_float_input_copy_without_the_transpose_stages_nhwc(tiny_int8, monkeypatch):
    """Where the NCHW copy cannot be made, the NHWC float-input copy runs (the session copies
    the batch into a float NHWC buffer made once per batch size); the results are the same."""
    import edgecnn.runtime.litert_float_input as lfi

    module, man, art, path = tiny_int8
    x = np.random.default_rng(6).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with LiteRTSession(man, art, str(path), threads=2, api="compiled") as nchw:
        want = nchw.run(x)
    real = lfi.float_input_model

    def no_transpose(data, nchw=False):
        if nchw:
            raise ValueError("no TRANSPOSE here")
        return real(data)

    monkeypatch.setattr(lfi, "float_input_model", no_transpose)
    with LiteRTSession(man, art, str(path), threads=2, api="compiled") as s:
        np.testing.assert_array_equal(s.run(x), want)  # same QUANTIZE, then a layout copy
        assert s._float_runner.takes_nchw is False and s.float_input_note is None
        staged = s._float_runner.staging(np.float32)
        assert staged.shape[1:] == (8, 8, 3)  # NHWC
        s.run(x)
        assert s._float_runner.staging(np.float32) is staged  # made once per batch size

def test_fp32_model_refuses_integer_input(tiny):
    _, man, art, path = tiny
    with LiteRTSession(man, art, str(path)) as s:
        with pytest.raises(InputError, match="expected float32"):
            s.run(np.zeros((1, 3, 8, 8), np.int8))
