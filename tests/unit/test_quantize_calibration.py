"""Calibration data sources and their errors (numpy + Pillow only, fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data.preprocess import grayscale_preprocess, imagenet_preprocess
from edgecnn.errors import CalibrationError
from edgecnn.quantize.calibration import calibration_hash, load_calibration, read_recipe

REPO = Path(__file__).resolve().parents[2]
PRE = grayscale_preprocess(size=(16, 16))
CHW = (1, 16, 16)


def _images(n: int, size=(20, 20), seed=0, rgb=False) -> np.ndarray:
    shape = (n, *size, 3) if rgb else (n, *size)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


@pytest.fixture
def class_folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i, im in enumerate(_images(5, seed=ord(c))):
            Image.fromarray(im).save(root / c / f"{i}.png")
    return root


def test_class_folder_is_preprocessed_by_the_spec(class_folder):
    cs = load_calibration(class_folder, PRE, CHW, samples=6, seed=1)
    assert cs.data.dtype == np.float32 and cs.data.shape == (6, *CHW) and cs.count == 6
    # the bundle's preprocessing, not a re-specified one: (x/255 - mean) / std
    lo = (0 - PRE.mean[0]) / PRE.std[0]
    hi = (1 - PRE.mean[0]) / PRE.std[0]
    assert cs.data.min() >= lo - 1e-5 and cs.data.max() <= hi + 1e-5
    assert cs.sha256 == calibration_hash(cs.data) and len(cs.sha256) == 64


def test_same_seed_same_set_other_seed_other_set(class_folder):
    a = load_calibration(class_folder, PRE, CHW, samples=4, seed=0)
    b = load_calibration(class_folder, PRE, CHW, samples=4, seed=0)
    c = load_calibration(class_folder, PRE, CHW, samples=4, seed=5)
    assert a.sha256 == b.sha256
    assert a.sha256 != c.sha256


def test_flat_folder_without_class_subfolders(tmp_path):
    for i, im in enumerate(_images(3, rgb=True)):
        Image.fromarray(im).save(tmp_path / f"{i}.jpg")
    cs = load_calibration(tmp_path, imagenet_preprocess((8, 8)), (3, 8, 8), samples=512)
    assert cs.data.shape == (3, 3, 8, 8)


def test_npy_uint8_images_and_float32_inputs(tmp_path):
    p = tmp_path / "u8.npy"
    np.save(p, _images(10))
    assert load_calibration(p, PRE, CHW, samples=7).data.shape == (7, *CHW)
    f = tmp_path / "f32.npy"
    arr = np.random.default_rng(0).standard_normal((9, *CHW)).astype(np.float32)
    np.save(f, arr)
    cs = load_calibration(f, PRE, CHW, samples=None)
    np.testing.assert_array_equal(cs.data, arr)


def test_npz_dataset(tmp_path):
    p = tmp_path / "d.npz"
    np.savez(p, images=_images(8), labels=np.arange(8) % 2)
    assert load_calibration(p, PRE, CHW, samples=3).count == 3


def test_recipe_resolves_relative_spec_and_sets_samples(tmp_path, class_folder):
    r = tmp_path / "r.toml"
    r.write_text('spec = "imgs"\nsamples = 3\nseed = 2\n')
    cs = load_calibration(r, PRE, CHW, samples=512)
    assert cs.count == 3 and cs.seed == 2 and cs.recipe["samples"] == 3
    assert cs.sha256 == load_calibration(class_folder, PRE, CHW, samples=3, seed=2).sha256


def test_checked_in_sample_and_its_recipe():
    recipe = REPO / "calibration" / "fashion-mnist-sample.toml"
    d = read_recipe(recipe)
    assert Path(d["spec"]).is_dir()
    pngs = list(Path(d["spec"]).rglob("*.png"))
    assert len(pngs) == 64 and sum(p.stat().st_size for p in pngs) < 200_000
    cs = load_calibration(recipe, grayscale_preprocess((28, 28)), (1, 28, 28))
    assert cs.count == 64 and cs.data.shape == (64, 1, 28, 28)


@pytest.mark.data
def test_fashion_mnist_split():
    from edgecnn.data.fashion_mnist import DEFAULT_DIR

    if not Path(DEFAULT_DIR, "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"Fashion-MNIST not installed in {DEFAULT_DIR}")
    cs = load_calibration("fashion-mnist:train", grayscale_preprocess((28, 28)), (1, 28, 28),
                          samples=32, seed=0)
    assert cs.count == 32 and cs.spec == "fashion-mnist:train"


# -- errors: each one clear ----------------------------------------------------------------
def test_empty_folder(tmp_path):
    with pytest.raises(CalibrationError, match="no images"):
        load_calibration(tmp_path, PRE, CHW)


def test_empty_npy(tmp_path):
    p = tmp_path / "e.npy"
    np.save(p, np.zeros((0, 16, 16), np.uint8))
    with pytest.raises(CalibrationError, match="empty"):
        load_calibration(p, PRE, CHW)


def test_float32_wrong_shape(tmp_path):
    p = tmp_path / "w.npy"
    np.save(p, np.zeros((4, 3, 16, 16), np.float32))
    with pytest.raises(CalibrationError, match=r"shape Nx1x16x16"):
        load_calibration(p, PRE, CHW)


@pytest.mark.parametrize("dtype", [np.float64, np.int32, np.int64, np.float16])
def test_wrong_dtype(tmp_path, dtype):
    p = tmp_path / "d.npy"
    np.save(p, np.zeros((4, 1, 16, 16), dtype))
    with pytest.raises(CalibrationError, match=f"got {np.dtype(dtype).name}"):
        load_calibration(p, PRE, CHW)


def test_truncated_npz(tmp_path):
    p = tmp_path / "t.npz"
    np.savez(p, images=_images(50))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CalibrationError, match="t.npz"):
        load_calibration(p, PRE, CHW)


def test_truncated_npy(tmp_path):
    p = tmp_path / "t.npy"
    np.save(p, _images(50))
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(CalibrationError, match="cannot read"):
        load_calibration(p, PRE, CHW)


def test_npz_of_float_images_is_refused(tmp_path):
    p = tmp_path / "f.npz"
    np.savez(p, images=np.zeros((3, 16, 16), np.float64))
    with pytest.raises(CalibrationError, match="uint8"):
        load_calibration(p, PRE, CHW)


def test_nan_inputs_refused(tmp_path):
    p = tmp_path / "n.npy"
    a = np.zeros((2, *CHW), np.float32)
    a[0, 0, 0, 0] = np.nan
    np.save(p, a)
    with pytest.raises(CalibrationError, match="NaN"):
        load_calibration(p, PRE, CHW)


def test_missing_and_unset_spec(tmp_path):
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(tmp_path / "nope", PRE, CHW)
    with pytest.raises(CalibrationError, match="no calibration data"):
        load_calibration("", PRE, CHW)


def test_bad_recipe(tmp_path):
    r = tmp_path / "r.toml"
    r.write_text('spec = "x"\nsampels = 3\n')
    with pytest.raises(CalibrationError, match="unknown keys"):
        load_calibration(r, PRE, CHW)
    r.write_text('samples = 3\n')
    with pytest.raises(CalibrationError, match="needs spec"):
        load_calibration(r, PRE, CHW)
    r.write_text('spec = "x"\nsamples = 0\n')
    with pytest.raises(CalibrationError, match="positive"):
        load_calibration(r, PRE, CHW)


def test_calibration_and_checker_modules_import_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, edgecnn.quantize.calibration, edgecnn.quantize.cache, "
            "edgecnn.quantize.qdq_check, edgecnn.quantize.int8, edgecnn.quantize.fp16; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'tensorflow') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
