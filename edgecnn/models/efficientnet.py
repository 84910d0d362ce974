"""EfficientNet-B0 (Tan & Le 2019) in the torchvision layout (5.29M params).

MBConv blocks: 1x1 expand -> depthwise kxk -> squeeze-excitation (SiLU, Sigmoid) -> 1x1 project,
residual when shape is kept. BN eps 1e-3 as the reference. Stochastic depth is left out
(identity at inference; one less training-only branch for exporters).
"""

from __future__ import annotations

import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model

# expand ratio, kernel, stride, in channels, out channels, repeats  (B0, width = depth = 1.0)
_B0_STAGES = [
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
]


def _conv_bn_act(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
                 act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout, eps=1e-3)]
    if act:
        layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = nn.SiLU(inplace=True)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int):
        super().__init__()
        mid = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_act(cin, mid, 1))
        layers += [_conv_bn_act(mid, mid, k, stride, groups=mid),
                   SqueezeExcitation(mid, max(1, cin // 4)),
                   _conv_bn_act(mid, cout, 1, act=False)]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and cin == cout

    def forward(self, x):
        out = self.block(x)
        return out + x if self.use_residual else out


class EfficientNet(nn.Module):
    def __init__(self, stages=_B0_STAGES, num_classes: int = 1000, in_chans: int = 3,
                 head_channels: int = 1280, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(in_chans, stages[0][3], 3, stride=2)]
        for expand, k, stride, cin, cout, repeats in stages:
            layers.append(nn.Sequential(*[
                MBConv(cin if i == 0 else cout, cout, expand, k, stride if i == 0 else 1)
                for i in range(repeats)]))
        layers.append(_conv_bn_act(stages[-1][4], head_channels, 1))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                                  nn.Linear(head_channels, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                r = 1.0 / m.out_features ** 0.5
                nn.init.uniform_(m.weight, -r, r)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.head(self.features(x))


@register_model("efficientnet_b0", family="efficientnet", input_size=(3, 224, 224),
                num_classes=1000, test_size=(3, 64, 64))
def efficientnet_b0(num_classes=1000, in_chans=3, img_size=224):
    """EfficientNet-B0: MBConv + squeeze-excitation, SiLU (5.29M params)."""
    square_side("efficientnet_b0", img_size, minimum=32)
    return EfficientNet(_B0_STAGES, num_classes, in_chans)
