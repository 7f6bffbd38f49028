"""CRNN = backbone → map-to-sequence → rnn → linear head over charset + blank (Shi, Bai, Yao 2015)."""

from __future__ import annotations

import torch
from torch import nn

from crnn_lit.model.rnn import SequenceModel


class CRNN(nn.Module):
    """Images (N, C, 32, W) → logits (T, N, num_classes), blank = class 0.

    Map-to-sequence reads the height-1 feature map column by column, left to right: column t is the
    feature vector of the image stripe under its receptive field, so frame order = reading order.
    """

    def __init__(self, backbone: nn.Module, rnn: SequenceModel, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.rnn = rnn
        self.head = nn.Linear(rnn.output_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(images)  # (N, D, 1, T)
        if features.shape[2] != 1:
            raise ValueError(f"backbone must reduce the height to 1, got feature map {tuple(features.shape)}")
        sequence = features.squeeze(2).permute(2, 0, 1)  # (T, N, D): column t → frame t
        return self.head(self.rnn(sequence))

    def output_length(self, width: int) -> int:
        """Frames T produced for an image ``width`` pixels wide; CTC needs T ≥ len(label) + adjacent repeats."""
        return self.backbone.output_length(width)

    def output_length_spec(self) -> dict:
        """The frame-count formula, for code that runs the exported model without ours."""
        return {"formula": "T = floor(W / stride) + offset", "stride": self.backbone.width_stride,
                "offset": self.backbone.width_offset}
