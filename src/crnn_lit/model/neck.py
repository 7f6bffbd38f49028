"""PP-OCRv6's sequence layers ("necks"), in our sequence-layer form: (T, N, D) features → (T, N, output_size).

* ``SVTRNeck`` (PP-OCRv6 small): a light SVTR encoder — 1×1 conv + BN + swish to ``dims``, a local mixer
  (depthwise conv over ``kernel`` frames + BN + swish, residual), ``depth`` pre-norm transformer blocks (global
  multi-head attention, swish MLP), a final LayerNorm, plus a 1×1 conv + BN + swish shortcut from the input.
* ``ConvMixer`` (PP-OCRv6 tiny): a depthwise conv over ``kernel`` frames + BN + hard-swish, a 1×1 conv + BN +
  hard-swish, and an optional linear projection (the low-rank half of tiny's CTC head).

Both compose with any backbone (they read only its ``out_channels``), like ``crnn_lit.model.rnn.SequenceModel``.

Their BN stay in eval mode in training (``FrozenBatchNorm``): a fine-tune on CPU-sized batches (8–32 words, one
width bucket each) would re-estimate the running statistics the imported weights were trained with from a few
noisy batches, and the statistics used in training (the batch's) would not be those used in reading (the running
ones). Frozen, each BN is a fixed per-channel affine map with a learnable scale and shift, exactly as it reads; a
network trained from scratch starts it as the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrozenBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d that always normalises with its running statistics and never updates them (see the module
    docstring); weight and bias still learn. Frozen in ``forward``, whatever the module's ``training`` flag says:
    Lightning restores the flags it captured by assignment, not through ``train()``, so a flag is no guarantee
    (a fine-tune that trusted it re-estimated these statistics and lost 7 points of hold-out accuracy)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def _conv_bn(cin: int, cout: int, kernel: int = 1, groups: int = 1) -> nn.Sequential:
    """A bias-free conv over frames (PaddleOCR's ConvBNLayer: the BN's shift is the bias) + a frozen BN."""
    return nn.Sequential(nn.Conv1d(cin, cout, kernel, padding=kernel // 2, groups=groups, bias=False),
                         FrozenBatchNorm(cout))


class Attention(nn.Module):
    """Global multi-head self-attention over the frames, qkv from one linear (with bias)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"svtr dims ({dim}) must be a multiple of heads ({heads})")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D)
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class TransformerBlock(nn.Module):
    """Pre-norm: x + attention(LN(x)), then x + MLP(LN(x)) with a swish MLP of ``mlp_ratio`` × dims."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class SVTRNeck(nn.Module):
    """PP-OCRv6 small's light SVTR encoder (see the module docstring); output size ``dims``."""

    def __init__(self, input_size: int, dims: int = 120, depth: int = 2, heads: int = 8, mlp_ratio: float = 2.0,
                 kernel: int = 7):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"svtr kernel must be odd (it is centred on its frame), got {kernel}")
        self.shortcut = _conv_bn(input_size, dims)
        self.reduce = _conv_bn(input_size, dims)
        self.local = _conv_bn(dims, dims, kernel, groups=dims)
        self.blocks = nn.Sequential(*(TransformerBlock(dims, heads, mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dims, eps=1e-6)
        self.output_size = dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 2, 0)  # (T, N, D) → (N, D, T): convolutions over frames
        shortcut = F.silu(self.shortcut(x))
        x = F.silu(self.reduce(x))
        x = x + F.silu(self.local(x))
        x = self.norm(self.blocks(x.transpose(1, 2)))  # (N, T, dims)
        return (x + shortcut.transpose(1, 2)).transpose(0, 1)


class ConvMixer(nn.Module):
    """PP-OCRv6 tiny's neck (see the module docstring); output size ``project_to`` or the input size."""

    def __init__(self, input_size: int, kernel: int = 5, project_to: int | None = None):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"conv_mixer kernel must be odd (it is centred on its frame), got {kernel}")
        self.depthwise = _conv_bn(input_size, input_size, kernel, groups=input_size)
        self.pointwise = _conv_bn(input_size, input_size)
        self.project = nn.Linear(input_size, project_to) if project_to else None
        self.output_size = project_to or input_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(1, 2, 0)  # (T, N, D) → (N, D, T)
        x = F.hardswish(self.pointwise(F.hardswish(self.depthwise(x))))
        x = x.permute(2, 0, 1)
        return self.project(x) if self.project is not None else x
