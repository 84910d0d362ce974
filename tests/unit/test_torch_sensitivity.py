"""Simulated INT8 sensitivity in PyTorch: the ranking the TFLite accuracy budget searches in."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from edgecnn.quantize.budget import fewest_passing  # noqa: E402
from edgecnn.quantize.torch_sensitivity import layer_sensitivity, quantizable_layers  # noqa: E402


class _Outlier(nn.Module):
    """conv1's channel 0 is ~500 for every input and conv2 ignores it: quantizing that tensor
    per tensor (conv1's output, conv2's input: in PT2E both ends) wipes out the other channels."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2)
        self.head = nn.Linear(8, 10)
        with torch.no_grad():
            self.conv1.bias[0] = 500.0
            self.conv2.weight[:, 0] = 0.0

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return self.head(x.mean((2, 3)))


def test_both_ends_of_the_outlier_tensor_rank_first_and_the_module_is_unchanged():
    torch.manual_seed(0)
    m = _Outlier().eval()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = np.random.default_rng(0).standard_normal((32, 1, 12, 12)).astype(np.float32)
    ticks = []
    sens = layer_sensitivity(m, x, progress=lambda: ticks.append(1))
    assert quantizable_layers(m) == ["conv1", "conv2", "head"] == list(sens)
    assert len(ticks) == 3
    assert min(sens["conv1"], sens["conv2"]) > 10 * sens["head"]
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in before.items())
    assert not m.conv2._forward_pre_hooks and not m.conv2._forward_hooks  # hooks removed


@pytest.mark.parametrize("needed, limit, calls", [(1, 8, [1]), (3, 8, [1, 2, 4, 3]),
                                                  (5, 8, [1, 2, 4, 8, 6, 5]),
                                                  (8, 8, [1, 2, 4, 8, 6, 7]),
                                                  (9, 8, [1, 2, 4, 8])])
def test_fewest_passing_doubles_then_bisects(needed, limit, calls):
    seen = []

    def passes(k):
        seen.append(k)
        return k >= needed

    assert fewest_passing(limit, passes) == (needed if needed <= limit else None)
    assert seen == calls
