"""Image-folder datasets: one subfolder per class holding .jpg/.png files. Pillow only.

Every image is checked when it is read: unreadable files, 16-bit/float images and CMYK
images raise a DataError naming the file, instead of being silently converted.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgecnn.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_GRAY_MODES = ("L", "1", "LA")
_COLOR_MODES = ("RGB", "RGBA", "P", "YCbCr")


def _visible(p: Path) -> bool:
    return not p.name.startswith(".")


def load_image_folder(root: str | os.PathLike):
    """-> ImageDataset of file paths with labels from the class subfolder names (sorted)."""
    from edgecnn.data.datasets import ImageDataset

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    entries = sorted(p for p in root.iterdir() if _visible(p))
    class_dirs = [p for p in entries if p.is_dir()]
    if not class_dirs:
        loose = [p.name for p in entries if p.is_file()][:3]
        what = f" (it holds files such as {', '.join(loose)})" if loose else " (it is empty)"
        raise DataError(f"image folder {root} has no class subfolders{what}; expected "
                        f"{root}/<class name>/<image>.png, one subfolder per class")
    paths, labels, classes = [], [], []
    for d in class_dirs:
        files = sorted(p for p in d.rglob("*") if p.is_file() and _visible(p)
                       and p.suffix.lower() in IMAGE_SUFFIXES)
        classes.append(d.name)
        paths.extend(files)
        labels.extend([len(classes) - 1] * len(files))
    if not paths:
        raise DataError(f"image folder {root} has class subfolders ({', '.join(classes[:5])}) "
                        f"but no images in them; expected {', '.join(IMAGE_SUFFIXES)} files")
    return ImageDataset(classes=classes, labels=labels, paths=paths, spec=str(root))


def open_checked(path: str | os.PathLike, channels: int = 3):
    """Open one image as 'L' or 'RGB', refusing modes that cannot be converted faithfully."""
    from edgecnn.data.preprocess import _pil

    Image = _pil()
    try:
        with Image.open(path) as im:
            im.load()
            img = im
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist") from None
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {path} is too large to decode safely: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; re-save it as PNG or JPEG "
                        f"or remove it from the folder") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise DataError(f"image {path} has mode {img.mode!r} (16/32-bit); save it as 8-bit "
                        f"grayscale ('L') or RGB")
    if img.mode == "CMYK":
        raise DataError(f"image {path} is CMYK; an RGB image is expected (convert it, e.g. "
                        f"with an image editor or Pillow's ImageCms, then save as RGB)")
    if img.mode in _GRAY_MODES:
        return img.convert("L") if channels == 1 or img.mode != "L" else img
    if img.mode in _COLOR_MODES:
        return img.convert("RGB") if img.mode != "RGB" else img
    raise DataError(f"image {path} has unsupported mode {img.mode!r}; save it as 8-bit "
                    f"grayscale or RGB")
