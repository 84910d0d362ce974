"""Per-layer INT8 sensitivity of a PyTorch module, simulated in float (fake quantization).

For the TFLite accuracy budget, whose every trial is a full PT2E conversion (tens of seconds):
rank the Conv2d/Linear layers first, cheaply, then convert only the candidates the search
needs. A layer's sensitivity = normalised logits MSE vs fp32 when ONLY that layer is quantized
the way the TFLite int8 export does it: int8 per-channel symmetric weights, and int8
per-tensor symmetric input and output activations with min-max ranges from the calibration
images. It is a ranking proxy (PT2E also quantizes the other ops' outputs), which is all the
budget search needs: the search itself measures real converted models.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BATCH = 16


def _fake_quant(x, amax: float):
    import torch

    scale = max(float(amax), 1e-12) / 127.0
    return torch.clamp(torch.round(x / scale), -127, 127) * scale


def _fake_quant_per_channel(w):
    import torch

    amax = w.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-12)
    scale = (amax / 127.0).view(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(torch.round(w / scale), -127, 127) * scale


def _forward(module, x: np.ndarray):
    import torch

    with torch.no_grad():
        outs = [module(torch.from_numpy(np.ascontiguousarray(x[i:i + BATCH])))
                for i in range(0, len(x), BATCH)]
    return torch.cat([o if isinstance(o, torch.Tensor) else o[0] for o in outs])


def quantizable_layers(module) -> list[str]:
    import torch

    return [n for n, m in module.named_modules()
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and n]


def layer_sensitivity(module, data: np.ndarray,
                      progress: Callable[[], None] = lambda: None) -> dict[str, float]:
    """{layer name: normalised logits MSE} with only that layer fake-quantized (NCHW float
    ``data``; the module is left exactly as it was)."""
    module = module.eval()
    names = quantizable_layers(module)
    layers = dict(module.named_modules())
    amax_in: dict[str, float] = {}
    amax_out: dict[str, float] = {}

    def record(name):
        def hook(mod, args, out):
            amax_in[name] = max(amax_in.get(name, 0.0), float(args[0].detach().abs().max()))
            amax_out[name] = max(amax_out.get(name, 0.0), float(out.detach().abs().max()))
        return hook

    handles = [layers[n].register_forward_hook(record(n)) for n in names]
    try:
        ref = _forward(module, data).double()
    finally:
        for h in handles:
            h.remove()
    denom = float((ref ** 2).mean()) or 1.0
    out: dict[str, float] = {}
    for name in names:
        layer = layers[name]
        weight = layer.weight.data
        layer.weight.data = _fake_quant_per_channel(weight)
        pre = layer.register_forward_pre_hook(
            lambda mod, args, n=name: (_fake_quant(args[0], amax_in[n]), *args[1:]))
        post = layer.register_forward_hook(
            lambda mod, args, y, n=name: _fake_quant(y, amax_out[n]))
        try:
            y = _forward(module, data).double()
        finally:
            pre.remove()
            post.remove()
            layer.weight.data = weight
        out[name] = float(((y - ref) ** 2).mean()) / denom
        progress()
    return out
