"""GoogLeNet / Inception v1 (Szegedy et al. 2014) in the torchvision layout (6,624,904 params).

Every conv is Conv-BN-ReLU (torchvision's BasicConv2d) and the "5x5" branch uses a 3x3 conv,
as torchvision does, so the parameter count matches its published 6.62M. The stride-2 max pools
use padding=1 instead of ceil_mode=True: the same output sizes at 224 and an ordinary op for
every exporter. The auxiliary classifiers are built only with ``aux_logits=True`` and are
used only in training mode; forward() returns a single logits tensor in eval/export.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model


class BasicConv2d(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int = 1, padding: int = 0):
        super().__init__(nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False),
                         nn.BatchNorm2d(cout, eps=0.001), nn.ReLU(inplace=True))


class Inception(nn.Module):
    def __init__(self, cin: int, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int,
                 ch5x5: int, pool_proj: int):
        super().__init__()
        self.branch1 = BasicConv2d(cin, ch1x1, 1)
        self.branch2 = nn.Sequential(BasicConv2d(cin, ch3x3red, 1),
                                     BasicConv2d(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(BasicConv2d(cin, ch5x5red, 1),
                                     BasicConv2d(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), BasicConv2d(cin, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    def __init__(self, cin: int, num_classes: int, dropout: float = 0.7):
        super().__init__()
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d((4, 4)), BasicConv2d(cin, 128, 1), nn.Flatten(1),
            nn.Linear(2048, 1024), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(1024, num_classes))

    def forward(self, x):
        return self.head(x)


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_chans: int = 3, aux_logits: bool = False,
                 dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(
            BasicConv2d(in_chans, 64, 7, stride=2, padding=3), nn.MaxPool2d(3, 2, padding=1),
            BasicConv2d(64, 64, 1), BasicConv2d(64, 192, 3, padding=1),
            nn.MaxPool2d(3, 2, padding=1))
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, padding=1)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(3, 2, padding=1)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        self.aux1 = InceptionAux(512, num_classes) if aux_logits else None
        self.aux2 = InceptionAux(528, num_classes) if aux_logits else None
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout),
                                  nn.Linear(1024, num_classes))
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.01, a=-2, b=2)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        """Logits; in training mode with aux heads, (logits, aux2, aux1) as torchvision."""
        x = self.maxpool3(self.inception3b(self.inception3a(self.stem(x))))
        x = self.inception4a(x)
        use_aux = self.aux1 is not None and self.training  # a Python flag, not a tensor value
        aux1 = self.aux1(x) if use_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if use_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.head(self.inception5b(self.inception5a(x)))
        if use_aux:
            return x, aux2, aux1
        return x


@register_model("googlenet", family="googlenet", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 64, 64))
def googlenet(num_classes=1000, in_chans=3, img_size=224, aux_logits=False):
    """GoogLeNet / Inception v1 with batch norm, aux heads off (6.62M params)."""
    square_side("googlenet", img_size, minimum=32)
    return GoogLeNet(num_classes, in_chans, aux_logits=aux_logits)
