"""Datasets (Fashion-MNIST IDX, image folders, .npz), accuracy and the confusion plot."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data.accuracy import evaluate
from edgecnn.data import fashion_mnist as fm
from edgecnn.data.datasets import ImageDataset, load_dataset
from edgecnn.data.preprocess import grayscale_preprocess, preprocess_batch
from edgecnn.errors import DataError
from edgecnn.manifest import Preprocess

HAVE_FMNIST = (Path(fm.DEFAULT_DIR) / "t10k-labels-idx1-ubyte.gz").is_file()
needs_fmnist = pytest.mark.skipif(not HAVE_FMNIST, reason="Fashion-MNIST not installed "
                                  "(sudo apt-get install dataset-fashion-mnist)")


# -- Fashion-MNIST ---------------------------------------------------------------------
def _write_idx(path: Path, magic: int, dims: list[int], payload: bytes) -> None:
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    with gzip.open(path, "wb") as f:
        f.write(header + payload)


def _fake_fmnist(root: Path, n_test: int = 10000, image_magic: int = 0x803,
                 truncate: int = 0) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8).tobytes()
    labels = rng.integers(0, 10, n_test, dtype=np.uint8).tobytes()
    _write_idx(root / "t10k-images-idx3-ubyte.gz", image_magic, [n_test, 28, 28],
               images[: len(images) - truncate])
    _write_idx(root / "t10k-labels-idx1-ubyte.gz", 0x801, [n_test], labels)


def test_missing_dataset_names_the_apt_package(tmp_path, monkeypatch):
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="sudo apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist:test")


def test_missing_file_in_dataset_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is missing.*apt-get install"):
        load_dataset("fashion-mnist:test")


def test_idx_reader_reads_a_valid_file(tmp_path, monkeypatch):
    _fake_fmnist(tmp_path)
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
    ds = load_dataset("fashion-mnist:test")
    assert ds.images.shape == (10000, 28, 28) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.classes == fm.FASHION_MNIST_CLASSES


def test_idx_wrong_magic_is_refused(tmp_path, monkeypatch):
    _fake_fmnist(tmp_path, image_magic=0x801)
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
    with pytest.raises(DataError, match="magic number 0x00000801, expected 0x00000803"):
        load_dataset("fashion-mnist:test")


def test_idx_truncated_file_is_refused(tmp_path, monkeypatch):
    _fake_fmnist(tmp_path, truncate=100)
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
    with pytest.raises(DataError, match="truncated or damaged"):
        load_dataset("fashion-mnist:test")


def test_idx_wrong_count_is_refused(tmp_path, monkeypatch):
    _fake_fmnist(tmp_path, n_test=50)
    monkeypatch.setenv(fm.ENV_DIR, str(tmp_path))
    with pytest.raises(DataError, match="holds 50 items, expected 10000"):
        load_dataset("fashion-mnist:test")


def test_unknown_split(tmp_path):
    with pytest.raises(DataError, match="unknown Fashion-MNIST split 'tset'"):
        load_dataset("fashion-mnist:tset")


def test_split_indices_are_fixed_and_disjoint():
    tr, va = fm.split_indices()
    assert len(tr) == 55000 and len(va) == 5000
    assert not set(tr.tolist()) & set(va.tolist())
    tr2, va2 = fm.split_indices()
    assert np.array_equal(va, va2)


@pytest.mark.data
@needs_fmnist
def test_real_fashion_mnist_splits():
    train, val, test = (load_dataset(f"fashion-mnist:{s}") for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    assert np.bincount(test.labels).tolist() == [1000] * 10
    # val is held out of the 60k training images: no image row of val appears in train
    full = load_dataset("fashion-mnist:train-full")
    _, va_idx = fm.split_indices()
    assert np.array_equal(full.images[va_idx], val.images)


# -- image folders -----------------------------------------------------------------------
def _folder(root: Path, classes=("cat", "dog"), per_class: int = 3, size=(20, 24)) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr, "RGB").save(root / c / f"{i}.png")
    return root


def test_image_folder_reads_classes_and_batches(tmp_path):
    ds = load_dataset(str(_folder(tmp_path / "imgs")))
    assert ds.classes == ["cat", "dog"] and len(ds) == 6
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]
    spec = Preprocess(size=[16, 16], channels=3)
    batches = list(ds.batches(spec, batch_size=4))
    assert [b[0].shape for b in batches] == [(4, 3, 16, 16), (2, 3, 16, 16)]
    # the dataset path and the runtime path give the same numbers
    runtime = preprocess_batch([str(p) for p in ds.paths], spec)
    assert np.allclose(np.concatenate([b[0] for b in batches]), runtime, atol=1e-6)


def test_empty_image_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class subfolders .*it is empty"):
        load_dataset(str(tmp_path / "empty"))


def test_folder_with_class_dirs_but_no_images(tmp_path):
    (tmp_path / "d" / "cat").mkdir(parents=True)
    (tmp_path / "d" / "cat" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match="no images in them"):
        load_dataset(str(tmp_path / "d"))


def test_corrupt_folder_without_class_subfolders(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    Image.new("RGB", (8, 8)).save(root / "a.png")
    with pytest.raises(DataError, match="no class subfolders .*a.png"):
        load_dataset(str(root))


def test_unreadable_image_names_the_file(tmp_path):
    root = _folder(tmp_path / "imgs")
    (root / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    ds = load_dataset(str(root))
    with pytest.raises(DataError, match="cannot read image .*broken.png"):
        list(ds.batches(Preprocess(size=[8, 8], channels=3), batch_size=16))


def test_16bit_image_is_refused(tmp_path):
    root = _folder(tmp_path / "imgs")
    Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)).save(root / "dog" / "deep.png")
    assert Image.open(root / "dog" / "deep.png").mode.startswith("I")
    ds = load_dataset(str(root))
    with pytest.raises(DataError, match="deep.png has mode 'I.*16/32-bit"):
        list(ds.batches(Preprocess(size=[8, 8], channels=3), batch_size=16))


def test_cmyk_image_is_refused(tmp_path):
    root = _folder(tmp_path / "imgs")
    Image.new("CMYK", (8, 8), (10, 20, 30, 40)).save(root / "cat" / "print.jpg")
    ds = load_dataset(str(root))
    with pytest.raises(DataError, match="print.jpg is CMYK; an RGB image is expected"):
        list(ds.batches(Preprocess(size=[8, 8], channels=3), batch_size=16))


def test_missing_dataset_path(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(str(tmp_path / "nope"))


# -- .npz ----------------------------------------------------------------------------------
def _npz(path: Path, n: int = 12, **extra) -> Path:
    rng = np.random.default_rng(1)
    arrays = {"images": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
              "labels": np.arange(n) % 3, "classes": np.array(["a", "b", "c"])}
    arrays.update(extra)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


def test_npz_dataset(tmp_path):
    ds = load_dataset(str(_npz(tmp_path / "d.npz")))
    assert len(ds) == 12 and ds.classes == ["a", "b", "c"]
    x, y = next(ds.batches(grayscale_preprocess((32, 32)), batch_size=5))
    assert x.shape == (5, 1, 32, 32) and y.tolist() == [0, 1, 2, 0, 1]
    # resizing goes through the runtime's exact path
    assert np.allclose(x[1], ds.preprocess_one(1, grayscale_preprocess((32, 32))), atol=1e-6)


@pytest.mark.parametrize("extra, match", [
    ({"images": None}, "no 'images' array"),
    ({"images": np.zeros((3, 8, 8), np.float32)}, "must be uint8"),
    ({"labels": np.arange(5)}, "'labels' must be N=12"),
    ({"labels": np.arange(12)}, "label 11 has no entry in 'classes'"),
])
def test_npz_errors(tmp_path, extra, match):
    with pytest.raises(DataError, match=match):
        load_dataset(str(_npz(tmp_path / "bad.npz", **extra)))


def test_subset_is_seeded(tmp_path):
    ds = load_dataset(str(_npz(tmp_path / "d.npz", n=30, labels=np.arange(30) % 3)))
    a, b, c = ds.subset(10, seed=3), ds.subset(10, seed=3), ds.subset(10, seed=4)
    assert np.array_equal(a.images, b.images) and not np.array_equal(a.images, c.images)
    assert len(a) == 10 and ds.subset(100) is ds


# -- accuracy ----------------------------------------------------------------------------
def _labelled(n_per_class: int = 4, k: int = 3) -> ImageDataset:
    labels = np.repeat(np.arange(k), n_per_class)
    images = np.zeros((len(labels), 4, 4), np.uint8)
    images[:, 0, 0] = labels  # the predictor reads the class from the first pixel
    return ImageDataset(classes=[f"c{i}" for i in range(k)], labels=labels, images=images,
                        spec="toy")


def test_evaluate_counts_exactly():
    ds = _labelled()
    spec = Preprocess(size=[4, 4], channels=1, mean=[0.0], std=[1.0], scale=1.0, channel_order="L")

    def predict(x):  # right class except for every image of class 2, predicted as 0
        cls = np.rint(x[:, 0, 0, 0]).astype(int)
        cls = np.where(cls == 2, 0, cls)
        logits = np.zeros((len(x), 3), np.float32)
        logits[np.arange(len(x)), cls] = 2.0
        logits[np.arange(len(x)), 2] += 1.0  # class 2 always second
        return logits

    r = evaluate(predict, ds, spec, batch_size=5, progress=False)
    assert r.n == 12
    assert r.top1 == pytest.approx(100 * 8 / 12)
    assert r.top5 == 100.0  # k = min(5, 3) = 3
    assert r.per_class == pytest.approx([100.0, 100.0, 0.0])
    assert r.confusion.tolist() == [[4, 0, 0], [0, 4, 0], [4, 0, 0]]
    d = json.loads(json.dumps(r.to_dict()))
    assert d["per_class"]["c2"] == 0.0


def test_evaluate_needs_labels_and_matching_outputs():
    ds = _labelled()
    spec = Preprocess(size=[4, 4], channels=1, mean=[0.0], std=[1.0], channel_order="L")
    unlabelled = ImageDataset(classes=ds.classes, images=ds.images, spec="toy")
    with pytest.raises(DataError, match="no labels"):
        evaluate(lambda x: np.zeros((len(x), 3)), unlabelled, spec, progress=False)
    with pytest.raises(DataError, match="has 5 outputs but toy has 3 classes"):
        evaluate(lambda x: np.zeros((len(x), 5)), ds, spec, progress=False)


def test_confusion_png_is_written(tmp_path):
    from edgecnn.bench.confusion import save_confusion_png

    ds = _labelled()
    spec = Preprocess(size=[4, 4], channels=1, mean=[0.0], std=[1.0], scale=1.0, channel_order="L")
    r = evaluate(lambda x: np.eye(3, dtype=np.float32)[np.rint(x[:, 0, 0, 0]).astype(int)], ds,
                 spec, progress=False)
    assert r.top1 == 100.0
    png = save_confusion_png(r, tmp_path / "sub" / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(png).size[0] > 200


def test_readers_do_not_import_torch():
    code = ("import sys, edgecnn.data.datasets, edgecnn.data.folder, edgecnn.data.npz, "
            "edgecnn.data.fashion_mnist, edgecnn.bench.accuracy, edgecnn.bench.confusion; "
            "print([m for m in ('torch', 'onnx', 'tensorflow', 'matplotlib') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
