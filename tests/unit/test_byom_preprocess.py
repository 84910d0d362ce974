"""Preprocessing a user states (resize, center crop, presets), checked against a reference
written here with PIL and numpy only, independently of edgecnn/data/preprocess.py; and the
manifest schema that stores it (schema 2, schema 1 still read)."""

from __future__ import annotations

import json
import math
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data.preprocess import preprocess_batch, resized_size
from edgecnn.errors import ManifestError, PreprocessError
from edgecnn.manifest import SCHEMA_VERSION, Manifest, Preprocess
from edgecnn.presets import PRESETS, PreprocessRequest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
_FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def _photo() -> Path | None:
    """A real photo shipped by an installed package (matplotlib's sample data)."""
    spec = find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / "mpl-data/sample_data/grace_hopper.jpg"
    return p if p.is_file() else None


def reference(img: Image.Image, resize, crop, mean, std, scale, bgr, interpolation):
    """torchvision's eval transform, spelled out: Resize(N) keeps the aspect ratio and truncates
    the long side; CenterCrop rounds its offsets; then x * scale, (x - mean) / std per channel."""
    img = img.convert("RGB")
    w, h = img.size
    if len(resize) == 1:
        short, long_ = (w, h) if w <= h else (h, w)
        new_short, new_long = resize[0], math.floor(resize[0] * long_ / short)
        size = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        size = (resize[1], resize[0])
    img = img.resize(size, _FILTERS[interpolation])
    ch, cw = crop
    top = int(round((size[1] - ch) / 2.0))
    left = int(round((size[0] - cw) / 2.0))
    pixels = np.array(img, dtype=np.float64)[top:top + ch, left:left + cw, :]
    if bgr:
        pixels = pixels[:, :, ::-1]
    out = np.empty((3, ch, cw))
    for c in range(3):
        out[c] = (pixels[:, :, c] * scale - mean[c]) / std[c]
    return out


def _synthetic(w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(w * 1000 + h)
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return Image.fromarray(base).resize((w, h), Image.BICUBIC)  # smooth, like a photo


CASES = [  # (preset or None, resize, crop, mean, std, scale, bgr, interpolation)
    ("imagenet", None, None, None, None, None, False, None),
    ("inception", None, None, None, None, None, False, None),
    ("tf", None, None, None, None, None, False, None),
    (None, (256,), (224, 224), (127.0,), (128.0,), 1.0, True, "bicubic"),
    (None, (240, 320), (224, 300), (0.5,), (0.25,), 1 / 255, False, "nearest"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0] or f"custom-{c[1]}")
@pytest.mark.parametrize("image", ["photo", "landscape", "portrait"])
def test_preprocess_matches_the_pil_reference(case, image):
    preset, resize, crop, mean, std, scale, bgr, interp = case
    if image == "photo":
        path = _photo()
        if path is None:
            pytest.skip("matplotlib's sample photo grace_hopper.jpg is not installed")
        img = Image.open(path)
    else:
        img = _synthetic(500, 375) if image == "landscape" else _synthetic(333, 517)
    req = PreprocessRequest(preset=preset, resize=resize, crop=crop, mean=mean, std=std,
                            scale=scale, bgr=bgr, interpolation=interp)
    fields = PRESETS[preset][1] if preset else {}
    crop = crop or tuple(fields["crop"])
    spec = req.resolve(Preprocess(size=list(crop)), (3, *crop))
    got = preprocess_batch([img], spec)[0]
    want = reference(img, resize or fields["resize"], crop, spec.mean, spec.std, spec.scale,
                     bgr, interp or fields["interpolation"])
    assert got.shape == want.shape
    # float32 arithmetic against float64: a few ulps of the normalised range
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * max(1.0, np.abs(want).max()))


def test_shorter_side_sizes_follow_torchvision():
    spec = Preprocess(size=[224, 224], resize=[256], crop=[224, 224])
    assert resized_size(500, 375, spec) == (341, 256)  # 341.33 truncated
    assert resized_size(375, 500, spec) == (256, 341)
    assert resized_size(512, 600, spec) == (256, 300)  # grace_hopper.jpg
    assert resized_size(256, 256, spec) == (256, 256)


def test_dataset_batches_and_the_runtime_see_the_same_input(tmp_path):
    """Calibration and eval (ImageDataset.batches) vs the runtime (preprocess_batch)."""
    from edgecnn.data.folder import load_image_folder

    for i, (w, h) in enumerate([(500, 375), (333, 517), (224, 224)]):
        (tmp_path / "c").mkdir(exist_ok=True)
        _synthetic(w, h).save(tmp_path / "c" / f"{i}.png")
    spec = PreprocessRequest(preset="imagenet").resolve(Preprocess(size=[224, 224]), (3, 224, 224))
    ds = load_image_folder(tmp_path)
    x, _ = next(ds.batches(spec, 8))
    np.testing.assert_array_equal(x, preprocess_batch(ds.paths, spec))


@pytest.mark.parametrize("request_, match", [
    (PreprocessRequest(preset="caffe"), "unknown preset 'caffe'"),
    (PreprocessRequest(resize=(256,), crop=(300, 300)), "larger than the resize"),
    (PreprocessRequest(resize=(200, 400), crop=(224, 224)), "larger than the resize"),
    (PreprocessRequest(mean=(0.5, 0.5)), "--mean"),
    (PreprocessRequest(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2)), "--std"),
    (PreprocessRequest(std=(0.5, 0.0, 0.5)), "must be > 0"),
    (PreprocessRequest(scale=0.0), "--scale"),
    (PreprocessRequest(interpolation="lanczos"), "interpolation"),
])
def test_bad_requests_are_one_line_errors(request_, match):
    with pytest.raises(PreprocessError, match=match) as err:
        request_.check()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("request_, size, match", [
    (PreprocessRequest(preset="imagenet"), (3, 299, 299), "--crop 299x299"),
    (PreprocessRequest(preset="fashion-mnist"), (3, 28, 28), "channel"),
    (PreprocessRequest(mean=(0.5, 0.5, 0.5)), (1, 28, 28), "--mean has 3 values"),
    (PreprocessRequest(resize=(256, 256)), (3, 224, 224), "add --crop 224x224"),
    (PreprocessRequest(bgr=True), (1, 28, 28), "--bgr"),
])
def test_requests_that_do_not_fit_the_model(request_, size, match):
    base = Preprocess(size=list(size[1:]), channels=size[0], mean=[0.0] * size[0],
                      std=[1.0] * size[0], channel_order="L" if size[0] == 1 else "RGB")
    with pytest.raises(PreprocessError, match=match):
        request_.resolve(base, size)


def test_resize_alone_crops_the_model_input_and_one_mean_serves_every_channel():
    pre = PreprocessRequest(resize=(256,), mean=(0.5,), std=(0.5,)).resolve(
        Preprocess(size=[224, 224]), (3, 224, 224))
    assert (pre.resize, pre.crop, pre.mean, pre.std) == ([256], [224, 224], [0.5] * 3, [0.5] * 3)
    assert "resize shorter side to 256, center crop 224x224" in pre.describe()


def test_schema_1_manifest_still_loads_and_is_written_as_the_current_schema():
    raw = json.loads((FIXTURES / "manifest_schema1.json").read_text())
    assert raw["schema_version"] == 1 and "resize" not in raw["preprocess"]
    m = Manifest.from_dict(raw)
    assert m.preprocess.resize is None and m.preprocess.crop is None
    assert m.to_dict()["schema_version"] == SCHEMA_VERSION == 2
    again = Manifest.from_json(m.to_json())
    assert again.preprocess == m.preprocess


@pytest.mark.parametrize("change, match", [
    ({"resize": [256]}, "needs a crop"),
    ({"resize": [256], "crop": [300, 300]}, "crop 300x300"),
    ({"resize": [0]}, "positive ints"),
    ({"crop": [16, 16]}, "differs from the input size"),
])
def test_manifest_refuses_geometry_that_cannot_make_the_input(change, match):
    raw = json.loads((FIXTURES / "manifest_schema1.json").read_text())
    raw["schema_version"] = 2
    raw["preprocess"].update(change)
    with pytest.raises(ManifestError, match=match):
        Manifest.from_dict(raw)
