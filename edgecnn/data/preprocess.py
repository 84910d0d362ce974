"""Image -> model input, from the manifest's Preprocess spec. numpy + Pillow only (no torch).

Calibration, evaluation, training and the device runtime all call :func:`preprocess_batch`
so every stage sees exactly the same input.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence, Union

import numpy as np

from edgecnn.errors import DataError
from edgecnn.manifest import Preprocess

ImageLike = Union[str, os.PathLike, np.ndarray, "PIL.Image.Image"]  # noqa: F821

MAX_IMAGE_PIXELS = 100_000_000  # refuse decompression bombs before decoding


def _pil():
    try:
        from PIL import Image
    except ImportError as exc:  # Pillow is a core dependency; say so if it is missing
        from edgecnn.errors import MissingDependencyError
        raise MissingDependencyError("Pillow is needed to read images: pip install pillow") from exc
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    return Image


_RESAMPLE = {"nearest": 0, "bilinear": 2, "bicubic": 3}  # PIL.Image.Resampling values


def load_image(item: ImageLike, channels: int):
    """Open a path / uint8 array / PIL image as a PIL image in mode 'L' or 'RGB'."""
    Image = _pil()
    mode = "L" if channels == 1 else "RGB"
    if isinstance(item, (str, os.PathLike)):
        try:
            with Image.open(item) as im:
                _check_pixels(im.size, os.fspath(item))  # before decoding a single pixel
                im.load()
                img = im
        except FileNotFoundError:
            raise DataError(f"image {os.fspath(item)} does not exist") from None
        except Image.DecompressionBombError as exc:
            raise DataError(f"image {os.fspath(item)} has more than the {MAX_IMAGE_PIXELS:,} pixels "
                            f"allowed ({exc}); downscale it before classification") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image {os.fspath(item)}: {exc}") from None
    elif isinstance(item, np.ndarray):
        img = _array_to_pil(item, Image)
    elif hasattr(item, "convert") and hasattr(item, "size"):
        img = item
    else:
        raise DataError(f"cannot use {type(item).__name__} as an image; pass a path, a PIL image "
                        f"or a uint8 array of shape HxW, HxWx1 or HxWx3")
    _check_pixels(img.size, "image")
    if img.mode not in ("L", "RGB", "RGBA", "LA", "P", "I;16", "I", "F", "1", "CMYK", "YCbCr"):
        raise DataError(f"image mode {img.mode!r} is not supported; save it as an 8-bit "
                        f"grayscale or RGB image")
    if img.mode in ("I;16", "I", "F"):
        raise DataError(f"image mode {img.mode!r} (16/32-bit) is not supported; convert it to "
                        f"8-bit grayscale ('L') or RGB first")
    return img.convert(mode) if img.mode != mode else img


def _check_pixels(size: tuple[int, int], what: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise DataError(f"{what} has zero size ({w}x{h}); nothing to classify")
    if w * h > MAX_IMAGE_PIXELS:
        raise DataError(f"{what} is {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS:,} allowed; "
                        f"downscale it before classification")


def _array_to_pil(arr: np.ndarray, Image):
    if arr.dtype != np.uint8:
        raise DataError(f"image arrays must be uint8 (got {arr.dtype}); for float tensors that "
                        f"are already preprocessed call session.run() instead")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return Image.fromarray(arr, mode="L")
    if arr.ndim == 3 and arr.shape[2] == 3:
        return Image.fromarray(arr, mode="RGB")
    raise DataError(f"image array of shape {arr.shape} is not HxW, HxWx1 or HxWx3")


def to_array(img, spec: Preprocess) -> np.ndarray:
    """A PIL image (already in the right mode) -> float32 CHW array, preprocessed."""
    return normalize_uint8(np.asarray(resize_and_crop(img, spec), dtype=np.uint8), spec)


def resized_size(width: int, height: int, spec: Preprocess) -> tuple[int, int]:
    """(width, height) after the resize step of ``spec``. The shorter side to N keeps the
    aspect ratio and truncates the longer side, as torchvision's ``Resize(N)`` does."""
    if spec.resize is None:
        return spec.size[1], spec.size[0]
    if len(spec.resize) == 2:
        return spec.resize[1], spec.resize[0]
    n = spec.resize[0]
    if width <= height:
        return n, int(n * height / width)
    return int(n * width / height), n


def center_crop_box(width: int, height: int, crop_h: int, crop_w: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centered crop, offsets rounded as torchvision's
    ``CenterCrop`` rounds them (Python's round: half to even)."""
    left = int(round((width - crop_w) / 2.0))
    top = int(round((height - crop_h) / 2.0))
    return left, top, left + crop_w, top + crop_h


def resize_and_crop(img, spec: Preprocess):
    """A PIL image -> a PIL image of ``spec.size``: the resize, then the center crop."""
    target = resized_size(img.size[0], img.size[1], spec)
    if img.size != target:
        img = img.resize(target, resample=_RESAMPLE[spec.interpolation])
    if spec.crop is not None and img.size != (spec.crop[1], spec.crop[0]):
        img = img.crop(center_crop_box(img.size[0], img.size[1], spec.crop[0], spec.crop[1]))
    return img


def keeps_size(spec: Preprocess) -> bool:
    """True when an image already of ``spec.size`` passes resize and crop unchanged."""
    h, w = spec.size
    return resized_size(w, h, spec) == (w, h)


def normalize_uint8(pixels: np.ndarray, spec: Preprocess) -> np.ndarray:
    """uint8 HxW / HxWxC (or NxHxW / NxHxWxC) at the right size -> float32 (N)CHW."""
    x = pixels.astype(np.float32)
    x *= np.float32(spec.scale)
    if spec.channels == 1:  # grayscale comes as (N)xHxW
        x = x[..., None]
    batched = x.ndim == 4
    if spec.channel_order == "BGR":
        x = x[..., ::-1]
    mean = np.asarray(spec.mean, dtype=np.float32).reshape(-1)
    std = np.asarray(spec.std, dtype=np.float32).reshape(-1)
    # (x - mean) / std straight into the (N)CHW result, one channel at a time: the same float32
    # arithmetic as broadcasting, without full-size temporaries. A 1-channel image with a
    # 3-value mean becomes 3 channels (gray to RGB), as broadcasting would make it.
    ch = max(x.shape[-1], mean.size, std.size)
    lead = x.shape[:-3] if batched else ()
    out = np.empty((*lead, ch, *x.shape[-3:-1]), np.float32)
    for c in range(ch):
        dst = out[:, c] if batched else out[c]
        np.subtract(x[..., c % x.shape[-1]], mean[c % mean.size], out=dst)
        dst /= std[c % std.size]
    return out


def preprocess_batch(images: Iterable[ImageLike], spec: Preprocess) -> np.ndarray:
    """Images (paths, PIL images, uint8 arrays) -> float32 NCHW batch."""
    arrays = [to_array(load_image(im, spec.channels), spec) for im in images]
    if not arrays:
        raise DataError("no images given")
    return np.stack(arrays)


def grayscale_preprocess(size: Sequence[int] = (28, 28), mean: float = 0.2860,
                         std: float = 0.3530) -> Preprocess:
    """The Fashion-MNIST preprocessing (mean/std of its training images)."""
    return Preprocess(size=list(size), channels=1, mean=[mean], std=[std], scale=1 / 255,
                      channel_order="L", interpolation="bilinear")


def imagenet_preprocess(size: Sequence[int] = (224, 224)) -> Preprocess:
    return Preprocess(size=list(size), channels=3)
