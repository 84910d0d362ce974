"""Vision Transformer (Dosovitskiy et al. 2020), patch 16, torchvision/timm layout.

vit_tiny_16: dim 192, depth 12, 3 heads (5.72M params); vit_base_16: dim 768, depth 12,
12 heads (86.57M params). The position embedding is sized from ``img_size`` at build time
(img_size must be divisible by 16); nothing is interpolated at run time. Attention is two
plain MatMuls around a Softmax so quantizers see ordinary MatMul nodes, and every reshape
takes the batch from ``x.shape[0]`` so exports keep a dynamic batch.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from edgecnn.models._common import square_side
from edgecnn.models.registry import register_model


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (b, heads, n, head_dim)
        attn = torch.matmul(q * self.scale, k.transpose(-2, -1)).softmax(dim=-1)
        out = torch.matmul(self.drop(attn), v)  # (b, heads, n, head_dim)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, dropout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VisionTransformer(nn.Module):
    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3,
                 num_classes: int = 1000, dim: int = 768, depth: int = 12, num_heads: int = 12,
                 mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = nn.Conv2d(in_chans, dim, patch_size, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        self.pos_drop = nn.Dropout(dropout)
        self.blocks = nn.Sequential(*[Block(dim, num_heads, mlp_ratio, dropout)
                                      for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)  # (b, patches, dim)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = self.pos_drop(torch.cat([cls, x], dim=1) + self.pos_embed)
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


@register_model("vit_tiny_16", family="vit", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 32, 32))
def vit_tiny_16(num_classes=1000, in_chans=3, img_size=224):
    """ViT-Tiny/16: dim 192, depth 12, 3 heads (5.72M params)."""
    side = square_side("vit_tiny_16", img_size, minimum=16, multiple_of=16)
    return VisionTransformer(side, 16, in_chans, num_classes, dim=192, depth=12, num_heads=3)


@register_model("vit_base_16", family="vit", input_size=(3, 224, 224), num_classes=1000,
                test_size=(3, 32, 32))
def vit_base_16(num_classes=1000, in_chans=3, img_size=224):
    """ViT-Base/16: dim 768, depth 12, 12 heads (86.6M params)."""
    side = square_side("vit_base_16", img_size, minimum=16, multiple_of=16)
    return VisionTransformer(side, 16, in_chans, num_classes, dim=768, depth=12, num_heads=12)
