"""LeNet-5 (LeCun et al. 1998), the classic 61,706-parameter layout at 1x32x32 with 10 classes.

conv 6@5x5 -> maxpool 2 -> conv 16@5x5 -> maxpool 2 -> fc 120 -> fc 84 -> fc num_classes,
with ReLU in place of the original tanh/sigmoid. The flatten size follows ``img_size``
(5x5 at 32, 4x4 at 28) instead of an adaptive pool, so every op in the graph is static and plain.
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model


def _feature_side(img_size: int) -> int:
    side = ((img_size - 4) // 2 - 4) // 2
    if side < 1:
        raise ValueError(f"lenet5 needs img_size >= 16, got {img_size}")
    return side


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1, img_size: int = 32):
        super().__init__()
        side = _feature_side(img_size)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(16 * side * side, 120), nn.ReLU(inplace=True),
            nn.Linear(120, 84), nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("lenet5", family="lenet", input_size=(1, 32, 32), num_classes=10,
                test_size=(1, 32, 32))
def lenet5(num_classes=10, in_chans=1, img_size=32):
    """LeNet-5: two 5x5 convs and three fully connected layers (61.7k params)."""
    return LeNet5(num_classes, in_chans, square_side("lenet5", img_size, minimum=16))

