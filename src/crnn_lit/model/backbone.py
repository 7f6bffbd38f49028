"""Convolutional feature extractors: (N, C, H, W) image → (N, D, 1, T) feature map, read left to right.

All backbones share the paper's down-sampling plan, so the sequence length is the same function of the
input width for every one of them:  T = floor(W / 4) + 1  (at input height 32).
  - two 2×2/2 max-pools divide W by 4 (floor at each step);
  - two height-only pools (kernel 2×2, stride (2, 1), padding (0, 1)) each add one column;
  - a final 2×2 valid convolution removes one.
Keeping more columns than W/4 would cost RNN time; fewer would make short wide characters collide in CTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn


class WidthPlan:
    """How a backbone maps an input width to its frame count: T = floor((W + width_pad) / width_stride) + width_offset.

    Every consumer of T (CTC lengths, the label policy, decoding, the export sidecar, the inspector) asks the
    model, so a backbone with another down-sampling plan only has to set these numbers."""

    width_stride = 4  # the paper's plan: two 2×2/2 pools
    width_offset = 1  # the columns the padded height-only pools add minus the one the last valid conv removes
    width_pad = 0  # columns added before dividing: padded stride-2 convs round up (PPLCNetV4: 3, ceil(W/4) // 2)

    def output_length(self, width: int) -> int:
        return (width + self.width_pad) // self.width_stride + self.width_offset


def _height_pool() -> nn.MaxPool2d:
    # halves the height, keeps (and pads) the width: thin characters like 'i' and 'l' keep their own columns
    return nn.MaxPool2d(kernel_size=2, stride=(2, 1), padding=(0, 1))


def _check_height(x: torch.Tensor, height: int) -> None:
    if x.shape[2] != height:
        raise ValueError(f"backbone expects input height {height}, got a tensor of shape {tuple(x.shape)}")


class VGG(WidthPlan, nn.Module):
    """The paper's 7-conv network (Shi et al. 2015, Table 1); ``channels`` scales it.

    conv1 pool conv2 pool conv3 conv4 hpool conv5+BN conv6+BN hpool conv7(2×2 valid), ReLU after each conv.
    With channels (64, 128, 256, 256, 512, 512, 512) and ``batch_norm`` (5, 6) it is the paper's net exactly;
    narrower channel lists give the CPU-light variant (same receptive field and sequence length, far fewer
    FLOPs). ``batch_norm`` lists the convs (1-based) followed by BN: BN after every conv leaves the CTC
    all-blank plateau several times sooner, which matters on a CPU budget.

    DTRB's "VGG" (deep-text-recognition-benchmark, EasyOCR's generation-2 recognizers) is the same layer list
    with ``height_pool="dtrb"`` (height-only pools of kernel (2, 1): T = floor(W/4) − 1) and
    ``height_reduce="mean"`` (feature rows averaged, so input heights 32, 48, 64, … work).
    """

    PAPER_CHANNELS = (64, 128, 256, 256, 512, 512, 512)

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = PAPER_CHANNELS,
                 batch_norm: Sequence[int] = (5, 6), height: int = 32,
                 height_pool: Literal["padded", "dtrb"] = "padded", height_reduce: Literal["none", "mean"] = "none"):
        super().__init__()
        if len(channels) != 7:
            raise ValueError(f"VGG backbone needs 7 channel counts, got {list(channels)}")
        if not set(batch_norm) <= set(range(1, 8)):
            raise ValueError(f"VGG batch_norm lists conv numbers 1..7, got {list(batch_norm)}")
        if height_pool not in ("padded", "dtrb") or height_reduce not in ("none", "mean"):
            raise ValueError(f"height_pool is padded|dtrb and height_reduce none|mean, got {height_pool!r}, "
                             f"{height_reduce!r}")
        if height_reduce == "none" and height != 32:
            raise ValueError(f"VGG backbone is built for input height 32, got {height} "
                             "(height_reduce=mean takes any multiple of 16 from 32 on)")
        if height < 32 or height % 16:
            raise ValueError(f"VGG input height must be a multiple of 16, at least 32; got {height}")
        c = list(channels)
        self.height = height
        self.out_channels = c[6]
        self.height_reduce = height_reduce
        # DTRB's height-only pools neither pad nor widen: two columns fewer than the paper's plan
        self.width_offset = 1 if height_pool == "padded" else -1

        def conv(cin, cout, bn=False, k=3, p=1):
            layers = [nn.Conv2d(cin, cout, k, 1, p, bias=not bn)]  # BN's shift makes a conv bias redundant
            if bn:
                layers.append(nn.BatchNorm2d(cout))
            return [*layers, nn.ReLU(inplace=True)]

        def hpool():
            return _height_pool() if height_pool == "padded" else nn.MaxPool2d((2, 1), (2, 1))

        bn = [i + 1 in set(batch_norm) for i in range(7)]
        self.features = nn.Sequential(
            *conv(in_channels, c[0], bn[0]), nn.MaxPool2d(2, 2),  # 32 → 16
            *conv(c[0], c[1], bn[1]), nn.MaxPool2d(2, 2),  # 16 → 8
            *conv(c[1], c[2], bn[2]), *conv(c[2], c[3], bn[3]), hpool(),  # 8 → 4
            *conv(c[3], c[4], bn[4]), *conv(c[4], c[5], bn[5]), hpool(),  # 4 → 2
            *conv(c[5], c[6], bn[6], k=2, p=0),  # 2 → 1 (at height 32)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_height(x, self.height)
        x = self.features(x)
        # rows left at heights > 32 (EasyOCR's 64 leaves 3) are averaged, as DTRB's AdaptiveAvgPool2d((None, 1))
        return x.mean(dim=2, keepdim=True) if self.height_reduce == "mean" else x


class BasicBlock(nn.Module):
    """ResNet basic block (two 3×3 convs + identity / 1×1 projection shortcut)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet(WidthPlan, nn.Module):
    """A ResNet-style extractor in the spirit of the one DTRB/FAN use for scene text (4 stages of basic blocks).

    Stages have ``channels`` widths and ``blocks`` depths; stage 1 and 2 end in 2×2 pools, stage 3 in a
    height-only pool, stage 4 in a height-only strided conv and a 2×2 valid conv — the VGG down-sampling plan,
    so T = floor(W/4) + 1 as well. Defaults (1, 2, 5, 3) blocks × (64, 128, 256, 512) channels.

    The stem is two 3×3 convs, ``stem_channels`` then ``channels[0]`` wide; a pair gives both widths. DTRB's ResNet
    (``TPS-ResNet-BiLSTM-CTC``) is ``stem_channels=[32, 64]``, ``channels=[128, 256, 512, 512]``.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256, 512),
                 blocks: Sequence[int] = (1, 2, 5, 3), stem_channels: int | Sequence[int] = 32, height: int = 32):
        super().__init__()
        if len(channels) != 4 or len(blocks) != 4:
            raise ValueError("ResNet backbone needs 4 stage widths and 4 block counts")
        stem = [stem_channels, channels[0]] if isinstance(stem_channels, int) else list(stem_channels)
        if len(stem) != 2:
            raise ValueError(f"ResNet stem_channels is one width or a pair, got {stem_channels}")
        if height != 32:
            raise ValueError(f"ResNet backbone is built for input height 32, got {height}")
        self.height = height
        self.out_channels = channels[3]

        def cbr(cin, cout, k=3, s=1, p=1):
            return [nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        def stage(cin, cout, n):
            return [BasicBlock(cin if i == 0 else cout, cout) for i in range(n)]

        c, b = channels, blocks
        self.features = nn.Sequential(
            *cbr(in_channels, stem[0]), *cbr(stem[0], stem[1]), nn.MaxPool2d(2, 2),  # 32 → 16
            *stage(stem[1], c[0], b[0]), *cbr(c[0], c[0]), nn.MaxPool2d(2, 2),  # 16 → 8
            *stage(c[0], c[1], b[1]), *cbr(c[1], c[1]), _height_pool(),  # 8 → 4 (W + 1)
            *stage(c[1], c[2], b[2]), *cbr(c[2], c[2]),
            *stage(c[2], c[3], b[3]),
            *cbr(c[3], c[3], k=2, s=(2, 1), p=(0, 1)),  # 4 → 2 (W + 1)
            *cbr(c[3], c[3], k=2, s=1, p=0),  # 2 → 1 (W − 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_height(x, self.height)
        return self.features(x)
