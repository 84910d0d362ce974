"""The one preprocessing path shared by calibration, evaluation and the runtime."""

import numpy as np
import pytest
from PIL import Image

from edgecnn.data.preprocess import (grayscale_preprocess, imagenet_preprocess, load_image,
                                     normalize_uint8, preprocess_batch)
from edgecnn.errors import DataError


def test_grayscale_path_array_and_pil_agree(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(tmp_path / "a.png")
    spec = grayscale_preprocess()
    a = preprocess_batch([tmp_path / "a.png"], spec)
    b = preprocess_batch([pixels], spec)
    c = preprocess_batch([Image.fromarray(pixels, "L")], spec)
    assert a.shape == (1, 1, 28, 28) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    expected = (pixels.astype(np.float32) / 255 - spec.mean[0]) / spec.std[0]
    np.testing.assert_allclose(a[0, 0], expected, rtol=1e-6, atol=1e-6)


def test_batched_normalize_matches_single():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    spec = imagenet_preprocess((8, 8))
    batch = normalize_uint8(imgs, spec)
    assert batch.shape == (3, 3, 8, 8)
    for i in range(3):
        np.testing.assert_array_equal(batch[i], normalize_uint8(imgs[i], spec))


def test_rgb_image_resized_and_converted_for_gray_model(tmp_path):
    Image.new("RGB", (64, 40), (200, 10, 10)).save(tmp_path / "rgb.jpg")
    out = preprocess_batch([tmp_path / "rgb.jpg"], grayscale_preprocess((28, 28)))
    assert out.shape == (1, 1, 28, 28)


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"not an image"), "cannot read image"),
    (lambda p: Image.new("I;16", (8, 8)).save(p), "16/32-bit"),
])
def test_bad_images_raise_data_error(tmp_path, make, match):
    p = tmp_path / "bad.png"
    make(p)
    with pytest.raises(DataError, match=match):
        load_image(p, 3)


def test_missing_and_oversized_images(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_image(tmp_path / "nope.png", 1)
    # a 50,000 x 50,000 PNG header: refused from its size, before any pixel is decoded
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 0, 0, 0, 0)
    (tmp_path / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                                        + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    with pytest.raises(DataError, match="more than"):
        load_image(tmp_path / "huge.png", 1)


def test_bad_arrays():
    with pytest.raises(DataError, match="uint8"):
        load_image(np.zeros((4, 4), np.float32), 1)
    with pytest.raises(DataError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8), 3)
    with pytest.raises(DataError, match="zero size"):
        load_image(np.zeros((0, 4), np.uint8), 1)
    with pytest.raises(DataError, match="no images"):
        preprocess_batch([], grayscale_preprocess())


def _broadcast_reference(pixels, spec):
    """normalize_uint8 as numpy broadcasting writes it: the arithmetic it must match bit for bit
    (calibration sets are identified by their sha256)."""
    x = pixels.astype(np.float32) * np.float32(spec.scale)
    if spec.channels == 1:
        x = x[..., None]
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose((0, 3, 1, 2) if x.ndim == 4 else (2, 0, 1)))


@pytest.mark.parametrize("shape,kw", [
    ((4, 16, 16), dict(channels=1, mean=(0.5,), std=(0.25,))),                   # gray
    ((4, 16, 16), dict(channels=1, mean=(0.485, 0.456, 0.406),                    # gray -> RGB
                       std=(0.229, 0.224, 0.225))),
    ((16, 16), dict(channels=1, mean=(0.1,), std=(0.3,))),                        # one image
    ((2, 16, 16, 3), dict(channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4),
                          channel_order="BGR")),
    ((16, 16, 3), dict(channels=3, mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4))),
])
def test_normalize_is_bit_identical_to_broadcasting(shape, kw):
    from edgecnn.data.preprocess import Preprocess

    px = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    spec = Preprocess(size=(16, 16), scale=1 / 255, **kw)
    got, want = normalize_uint8(px, spec), _broadcast_reference(px, spec)
    assert got.dtype == np.float32 and got.flags.c_contiguous and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
