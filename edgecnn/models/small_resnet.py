"""CIFAR-style residual nets (He et al. 2015, section 4.2) for small grayscale inputs.

A 3x3 stem to 16 channels, three stages of BasicBlocks at 16/32/64 channels (strides 1/2/2),
global average pool, one linear layer. Depth 6n+2: resnet8 (n=1), resnet20 (n=3).
Shortcuts that change shape are 1x1 conv + BN (option B): plain ops, unlike option A's
zero padding by channel slicing.
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model
from edgecnn.models.resnet import BasicBlock


class SmallResNet(nn.Module):
    def __init__(self, blocks_per_stage: int, num_classes: int = 10, in_chans: int = 1,
                 widths: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, widths[0], 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        cin = widths[0]
        stages = []
        for i, w in enumerate(widths):
            blocks = []
            for j in range(blocks_per_stage):
                blocks.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.layer3(self.layer2(self.layer1(self.stem(x)))))


@register_model("resnet8", family="small_resnet", input_size=(1, 28, 28), num_classes=10,
                test_size=(1, 28, 28))
def resnet8(num_classes=10, in_chans=1, img_size=28):
    """ResNet-8 (CIFAR style): one BasicBlock per stage, 16/32/64 channels (~78k params)."""
    square_side("resnet8", img_size, minimum=4)
    return SmallResNet(1, num_classes, in_chans)


@register_model("resnet20", family="small_resnet", input_size=(1, 28, 28), num_classes=10,
                test_size=(1, 28, 28))
def resnet20(num_classes=10, in_chans=1, img_size=28):
    """ResNet-20 (CIFAR style): three BasicBlocks per stage, 16/32/64 channels (~0.27M params)."""
    square_side("resnet20", img_size, minimum=4)
    return SmallResNet(3, num_classes, in_chans)
