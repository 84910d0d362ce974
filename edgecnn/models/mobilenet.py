"""MobileNetV2 (Sandler et al. 2018) in the torchvision layout (3,504,872 params at 1000 classes).

Inverted residual blocks: 1x1 expand -> depthwise 3x3 -> 1x1 linear projection (no activation),
residual when the shape is kept; ReLU6 activations, widths rounded to multiples of 8 (width 1.0).
The block EfficientNet's MBConv grew from (EfficientNet adds squeeze-excitation and SiLU).
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model

# expand ratio, out channels, repeats, first stride (the paper's Table 2, width 1.0)
_V2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                   act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(cin, mid, 1))
        layers += [_conv_bn_relu6(mid, mid, 3, stride, groups=mid),  # depthwise
                   _conv_bn_relu6(mid, cout, 1, act=False)]  # linear bottleneck
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_residual else out


class MobileNetV2(nn.Module):
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, stem: int = 32,
                 head_channels: int = 1280, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(in_chans, stem, 3, stride=2)]
        cin = stem
        for expand, cout, repeats, stride in _V2_STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(_conv_bn_relu6(cin, head_channels, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                                  nn.Linear(head_channels, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("mobilenet_v2", family="mobilenet", input_size=(3, 224, 224),
                num_classes=1000, test_size=(3, 64, 64))
def mobilenet_v2(num_classes=1000, in_chans=3, img_size=224):
    """MobileNetV2: inverted residuals, depthwise 3x3, ReLU6 (3.50M params)."""
    square_side("mobilenet_v2", img_size, minimum=32)
    return MobileNetV2(num_classes, in_chans)
