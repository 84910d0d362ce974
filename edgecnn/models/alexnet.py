"""AlexNet in the torchvision layout (Krizhevsky 2014 "one weird trick" variant, 61.1M params).

Convs 64/192/384/256/256, adaptive average pool to 6x6, dropout + 4096-4096 fully connected.
Below 224 the feature map is smaller than 6x6 and the adaptive pool replicates it (a 1x1 map
as a plain Expand); the smallest accepted input is 63x63 (one 1x1 feature map).
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model
from edgecnn.models.vgg import AdaptiveAvgPoolTo


class AlexNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 64, 11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = AdaptiveAvgPoolTo((6, 6))
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.avgpool(self.features(x)))


@register_model("alexnet", family="alexnet", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 64, 64))
def alexnet(num_classes=1000, in_chans=3, img_size=224):
    """AlexNet (torchvision layout): five convs, 4096-4096 classifier (61.1M params)."""
    square_side("alexnet", img_size, minimum=63)
    return AlexNet(num_classes, in_chans)
