"""The zoo at its small test sizes, for the quantization matrices: lenet5 and resnet8 run in
`make test`, every other model with -m slow."""

from __future__ import annotations

import pytest

FAST = {"lenet5", "resnet8"}


def zoo_params():
    from edgecnn.models import list_models

    for info in list_models():
        marks = () if info.name in FAST else (pytest.mark.slow,)
        yield pytest.param(info.name, marks=marks, id=info.name)


def random_zoo_model(name: str, classes: int = 10):
    """(LoadedModel, (C, H, W)) of a seeded random-init zoo model at its test size, with settled
    BatchNorm where its logits would vanish, as `edgecnn export NAME` makes it."""
    import torch

    from edgecnn.data.preprocess import grayscale_preprocess, imagenet_preprocess
    from edgecnn.models import create_model, get_model_info
    from edgecnn.models.batchnorm import settle_if_vanishing
    from edgecnn.models.loading import LoadedModel

    c, h, w = get_model_info(name).test_size
    torch.manual_seed(0)
    module = create_model(name, num_classes=classes, in_chans=c, img_size=h)
    settle_if_vanishing(module, (c, h, w))
    pre = grayscale_preprocess((h, w)) if c == 1 else imagenet_preprocess((h, w))
    lm = LoadedModel(module=module, name=name, input_size=(c, h, w), preprocess=pre,
                     labels=[str(i) for i in range(classes)])
    return lm, (c, h, w)
