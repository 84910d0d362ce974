"""BatchNorm statistics for random-weight models.

A freshly initialised net has running mean 0 and variance 1 in every BatchNorm, so in eval
mode each one is the identity; through deep stacks with squeeze-excitation and SiLU
(efficientnet_b0) or many branches (googlenet) the logits shrink to about 1e-11. Float
parity still holds, but INT8 rounds such outputs to zero and FP16 cannot hold them. Settling
the statistics on a few random inputs gives logits of a normal size without touching the
weights: what smoke tests and conversion benchmarks without trained weights need.

Only nets whose logits vanish are settled: in a settled random resnet50 the residual stream
grows block after block and the logits become a small difference of large numbers (float16
then misses cosine 0.999), while its unsettled logits (~20) convert cleanly.
"""

from __future__ import annotations


SETTLE_ELEMENTS = 1 << 20  # input elements of the settling batch: 16 images at 32 px, 6 at 224


def settle_batchnorm(module, input_chw, batch: int | None = None, seed: int = 0):
    """Set every BatchNorm's running statistics from one seeded random batch; return
    ``module`` in eval mode. Weights are unchanged; a model without BatchNorm is untouched."""
    import torch

    c, h, w = input_chw
    batch = batch or max(2, min(16, SETTLE_ELEMENTS // max(1, c * h * w)))
    bns = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics exactly
    if bns:
        g = torch.Generator().manual_seed(seed)
        module.train()
        with torch.no_grad():
            module(torch.randn(batch, *input_chw, generator=g))
        for m in bns:
            m.momentum = 0.1  # PyTorch's default again, for anyone who trains it later
    return module.eval()


VANISHING = 1e-3  # max |logit| of a random-weight net below which its BatchNorm is settled


def settle_if_vanishing(module, input_chw, seed: int = 0) -> bool:
    """Settle BatchNorm (see above) when the eval-mode logits on a seeded random batch are all
    below ``VANISHING``; True when it did. The module is in eval mode afterwards."""
    import torch

    g = torch.Generator().manual_seed(seed)
    module.eval()
    with torch.no_grad():
        y = module(torch.randn(2, *input_chw, generator=g))
    y = y if isinstance(y, torch.Tensor) else y[0]
    if float(y.abs().max()) >= VANISHING:
        return False
    settle_batchnorm(module, input_chw, seed=seed)
    return True
