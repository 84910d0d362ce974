"""Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package. numpy + gzip only.

The IDX files are read directly and validated (magic number, dimensions, file size).
Splits: ``train`` = 55,000 and ``val`` = 5,000 images held out of the 60,000 training
images by a permutation with seed 0 (so every tool sees the same split); ``test`` = the
10,000 t10k images; ``train-full`` = all 60,000.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError
from edgecnn.manifest import Preprocess

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
ENV_DIR = "EDGECNN_FASHION_MNIST_DIR"  # points the reader somewhere else (tests, other installs)
INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"
SPLITS = ("train", "val", "test", "train-full")
VAL_SIZE = 5000
SPLIT_SEED = 0

_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000)}
_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension


def dataset_dir(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get(ENV_DIR) or DEFAULT_DIR)


def fashion_mnist_preprocess(size: int = 28) -> Preprocess:
    """Grayscale, resized to size x size, normalised by the training-set mean/std."""
    from edgecnn.data.preprocess import grayscale_preprocess

    return grayscale_preprocess((size, size))


def read_idx(path: Path, magic: int, count: int | None = None) -> np.ndarray:
    """Read one gzipped IDX file (uint8 payload) and check its header against its size."""
    if not path.is_file():
        raise DataError(f"Fashion-MNIST file {path} is missing; install the dataset with "
                        f"'{INSTALL_HINT}' or set {ENV_DIR} to a folder holding the IDX .gz files")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}; reinstall with "
                        f"'sudo apt-get install --reinstall dataset-fashion-mnist'") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated ({len(raw)} bytes): not an IDX file")
    got_magic = int.from_bytes(raw[:4], "big")
    if got_magic != magic:
        raise DataError(f"{path} has IDX magic number 0x{got_magic:08x}, expected 0x{magic:08x}: "
                        f"not a Fashion-MNIST {'image' if ndim == 3 else 'label'} file")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if count is not None and dims[0] != count:
        raise DataError(f"{path} holds {dims[0]} items, expected {count}")
    if ndim == 3 and dims[1:] != [28, 28]:
        raise DataError(f"{path} holds {dims[1]}x{dims[2]} images, expected 28x28")
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError(f"{path} has {len(raw)} bytes, its header promises {expected}: the file "
                        f"is truncated or damaged")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _read_pair(which: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file, n = _FILES[which]
    images = read_idx(root / images_file, _IMAGES_MAGIC, n)
    labels = read_idx(root / labels_file, _LABELS_MAGIC, n).astype(np.int64)
    if labels.max() >= len(FASHION_MNIST_CLASSES):
        raise DataError(f"{root / labels_file} has label {labels.max()}; Fashion-MNIST has 10 classes")
    return images, labels


def split_indices(n: int = 60000, val_size: int = VAL_SIZE, seed: int = SPLIT_SEED):
    """(train, val) index arrays of the fixed hold-out split, each sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[val_size:]), np.sort(perm[:val_size])


def load_fashion_mnist(split: str = "train", root: str | os.PathLike | None = None):
    """-> (images uint8 Nx28x28, labels int64 N) for 'train', 'val', 'test' or 'train-full'."""
    if split not in SPLITS:
        raise DataError(f"unknown Fashion-MNIST split {split!r}; use one of {', '.join(SPLITS)}")
    folder = dataset_dir(root)
    if not folder.is_dir():
        raise DataError(f"Fashion-MNIST is not installed ({folder} does not exist); install it "
                        f"with '{INSTALL_HINT}' or set {ENV_DIR} to a folder holding the IDX .gz files")
    if split == "test":
        return _read_pair("test", folder)
    images, labels = _read_pair("train", folder)
    if split == "train-full":
        return images, labels
    train_idx, val_idx = split_indices(len(labels))
    idx = train_idx if split == "train" else val_idx
    return images[idx], labels[idx]
