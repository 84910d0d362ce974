"""Parameter and multiply-accumulate (MAC) counts of a torch module.

Only used where torch is installed; torch is imported inside the functions.

What ``count_macs`` counts, per sample (batch 1):
  - nn.Conv2d: out_elements * (in_channels / groups) * kh * kw
  - nn.Linear: out_elements * in_features (applies per token for sequence inputs)
  - ViT attention (``edgecnn.models.vit.Attention``): the two batched MatMuls,
    QK^T and attn @ V, 2 * tokens^2 * dim
What it leaves out: biases, batch norm, activations, pooling, softmax, layer norm and
element-wise adds/multiplies (small next to the above, and most of them fold away on export).
"""

from __future__ import annotations


def count_params(module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once). Works on meta tensors."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def count_macs(module, input_size_chw) -> int:
    """MACs of one forward pass on a single (C, H, W) input; see the module doc for what counts."""
    import torch
    import torch.nn as nn

    from edgecnn.models.vit import Attention

    total = 0

    def conv_hook(m, inputs, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, inputs, out):
        nonlocal total
        total += out.numel() * m.in_features

    def attn_hook(m, inputs, out):
        nonlocal total
        _b, n, c = inputs[0].shape
        total += 2 * n * n * c

    handles = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, Attention):
            handles.append(m.register_forward_hook(attn_hook))
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(torch.zeros((1, *tuple(input_size_chw)), device=device, dtype=dtype))
    finally:
        for h in handles:
            h.remove()
        module.train(was_training)
    return int(total)
