"""PPLCNetV4, the convolutional backbone of PaddleOCR's PP-OCRv6 recognizers, as plain torch modules.

(N, 3, 48, W) → (N, C, 1, T): a stride-4 stem, then blocks of a depthwise 3×3 token mixer (optionally followed by
squeeze-and-excitation) and a 1×1 GELU channel mixer, down-sampling the height only (stride (2, 1)), and a final
average pool of (height / 16) × 2 to height 1. Frames: T = floor(ceil(W / 4) / 2) = floor((W + 3) / 8).

The layout is the one PaddleOCR's *inference* graphs have (``python -m crnn_lit.checkpoint import --format ppocr``
reads them): batch norm folded into the convolutions and the re-parameterised depthwise branches (3×3 + 1×1 +
identity) fused into one 3×3 — every conv carries a bias and nothing else. That is what makes the import exact (the
released weights exist only in that form) and it is also the cheapest form to run. ``batch_norm=True`` puts a BN
after every conv instead (bias-free convs), for training the backbone from scratch, where BN's normalisation is what
lets a deep stack of convs train at all; the imported weights load only into ``batch_norm=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from crnn_lit.model.backbone import WidthPlan, _check_height


def _conv(cin: int, cout: int, kernel, stride=1, padding=0, groups: int = 1, batch_norm: bool = False) -> nn.Module:
    """A conv with bias (the folded form), or a bias-free conv + BN (``batch_norm``: BN's shift replaces the bias)."""
    conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=not batch_norm)
    return nn.Sequential(conv, nn.BatchNorm2d(cout)) if batch_norm else conv


class HGStem(nn.Module):
    """PP-HGNetV2's stem (PP-OCRv6 small): conv 3×3/2 → [conv 2×2 → conv 2×2 ‖ max-pool 2×2/1] → concat →
    conv 3×3/2 → conv 1×1, ReLU after each conv. The 2×2 ops pad one row and column at the bottom and right
    (Paddle's "SAME"), so they keep the size."""

    def __init__(self, in_channels: int, mid: int, out: int, batch_norm: bool):
        super().__init__()
        self.stem1 = _conv(in_channels, mid, 3, 2, 1, batch_norm=batch_norm)
        self.stem2a = _conv(mid, mid // 2, 2, batch_norm=batch_norm)
        self.stem2b = _conv(mid // 2, mid, 2, batch_norm=batch_norm)
        self.stem3 = _conv(2 * mid, mid, 3, 2, 1, batch_norm=batch_norm)
        self.stem4 = _conv(mid, out, 1, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem1(x))
        branch = F.relu(self.stem2b(F.pad(F.relu(self.stem2a(F.pad(x, (0, 1, 0, 1)))), (0, 1, 0, 1))))
        pooled = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 2, 1)
        x = F.relu(self.stem3(torch.cat([pooled, branch], 1)))
        return F.relu(self.stem4(x))


class ConvStem(nn.Module):
    """PP-OCRv6 tiny's stem: conv 3×3/2 → GELU → conv 3×3/2 (no activation after the second)."""

    def __init__(self, in_channels: int, mid: int, out: int, batch_norm: bool):
        super().__init__()
        self.conv1 = _conv(in_channels, mid, 3, 2, 1, batch_norm=batch_norm)
        self.conv2 = _conv(mid, out, 3, 2, 1, batch_norm=batch_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.gelu(self.conv1(x)))


class SqueezeExcite(nn.Module):
    """Channel attention: global mean → 1×1 (C/4) → ReLU → 1×1 (C) → hard-sigmoid, scaling the input."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        self.reduce = nn.Conv2d(channels, channels // reduction, 1)
        self.expand = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.hardsigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))


class LCBlock(nn.Module):
    """Token mixer (depthwise 3×3, stride (``stride``, 1), + SE) then channel mixer (1×1 to 2·C_in, GELU, 1×1 to
    C_out), the channel mixer residual when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, se: bool, batch_norm: bool):
        super().__init__()
        self.dw = _conv(cin, cin, 3, (stride, 1), 1, groups=cin, batch_norm=batch_norm)
        self.se = SqueezeExcite(cin) if se else nn.Identity()
        self.fc1 = _conv(cin, 2 * cin, 1, batch_norm=batch_norm)
        self.fc2 = _conv(2 * cin, cout, 1, batch_norm=batch_norm)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.se(self.dw(x))
        y = self.fc2(F.gelu(self.fc1(x)))
        return x + y if self.residual else y


class PPLCNetV4(WidthPlan, nn.Module):
    """PP-OCRv6's recognition backbone. ``stem`` "hg" (small) or "conv" (tiny) with ``stem_channels`` (mid, out);
    ``blocks``: one ``[out_channels, height_stride, se]`` per block (crnn_lit.model.build.BACKBONES has the two
    released layouts). ``height``: a multiple of 16 (48 for the released models); the last pool averages the
    remaining height/16 rows and pairs of columns."""

    width_stride = 8
    width_offset = 0
    width_pad = 3  # T = floor((W + 3) / 8): the two padded stride-2 convs round W / 4 up

    def __init__(self, in_channels: int = 3, stem: Literal["hg", "conv"] = "hg",
                 stem_channels: Sequence[int] = (48, 96), blocks: Sequence[Sequence] = (), height: int = 48,
                 batch_norm: bool = False):
        super().__init__()
        if stem not in ("hg", "conv"):
            raise ValueError(f"PPLCNetV4 stem is hg or conv, got {stem!r}")
        if len(stem_channels) != 2 or not blocks:
            raise ValueError(f"PPLCNetV4 needs stem_channels (mid, out) and at least one block, got "
                             f"{list(stem_channels)}, {list(blocks)}")
        strides = [int(b[1]) for b in blocks]
        if height % 16 or height < 16 or 2 ** strides.count(2) != 4 or set(strides) - {1, 2}:
            raise ValueError(f"PPLCNetV4 takes an input height that is a multiple of 16 and two blocks of height "
                             f"stride 2 (the rest 1); got height {height}, strides {strides}")
        self.height = height
        self.batch_norm = batch_norm
        mid, channels = stem_channels
        self.stem = (HGStem if stem == "hg" else ConvStem)(in_channels, mid, channels, batch_norm)
        layers = []
        for out, stride, se in blocks:
            layers.append(LCBlock(channels, int(out), int(stride), bool(se), batch_norm))
            channels = int(out)
        self.blocks = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_height(x, self.height)
        x = self.blocks(self.stem(x))
        # the inference pooling in training too: PaddleOCR trains with an adaptive pool to 40 columns and reads with
        # this one, a train/test mismatch a fine-tune need not repeat (and T must follow W for CTC)
        return F.avg_pool2d(x, (self.height // 16, 2))
