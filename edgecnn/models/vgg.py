"""VGG-11 / VGG-16 (Simonyan & Zisserman 2014, configurations A and D, no batch norm).

torchvision layout: conv stacks, adaptive average pool to 7x7, 4096-4096 classifier.
Five 2x2 max pools, so inputs must be at least 32x32; below 224 the adaptive pool
replicates the small feature map up to 7x7.
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model

_CFGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
}


class AdaptiveAvgPoolTo(nn.AdaptiveAvgPool2d):
    """Adaptive average pool whose 1x1-input case exports as a broadcast (Expand).

    The general adaptive-pool decomposition emits GatherND when the output is larger than the
    input; a 1x1 map (VGG at 32x32, AlexNet at 64x64) just repeats, which Expand says plainly.
    The branch reads a static spatial size, never a tensor value.
    """

    def forward(self, x):
        if tuple(x.shape[-2:]) == (1, 1):
            return x.expand(-1, -1, *self.output_size)
        return super().forward(x)


class VGG(nn.Module):
    def __init__(self, cfg: list, num_classes: int = 1000, in_chans: int = 3,
                 dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = AdaptiveAvgPoolTo((7, 7))
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


@register_model("vgg11", family="vgg", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 32, 32))
def vgg11(num_classes=1000, in_chans=3, img_size=224):
    """VGG-11 (configuration A, 132.9M params)."""
    square_side("vgg11", img_size, minimum=32)
    return VGG(_CFGS["vgg11"], num_classes, in_chans)


@register_model("vgg16", family="vgg", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 32, 32))
def vgg16(num_classes=1000, in_chans=3, img_size=224):
    """VGG-16 (configuration D, 138.4M params)."""
    square_side("vgg16", img_size, minimum=32)
    return VGG(_CFGS["vgg16"], num_classes, in_chans)
