"""CRNN = [transform →] backbone → map-to-sequence → rnn → linear head over charset + blank (Shi, Bai, Yao 2015).

The optional transformation stage (``crnn_lit.model.transform``) is DTRB's: none in the paper, or a TPS."""

from __future__ import annotations

import torch
from torch import nn

from crnn_lit.model.rnn import SequenceModel
from crnn_lit.model.transform import NoTransform


class CRNN(nn.Module):
    """Images (N, C, 32, W) → logits (T, N, num_classes), blank = class 0.

    Map-to-sequence reads the height-1 feature map column by column, left to right: column t is the
    feature vector of the image stripe under its receptive field, so frame order = reading order.
    """

    def __init__(self, backbone: nn.Module, rnn: SequenceModel, num_classes: int, transform: nn.Module | None = None):
        super().__init__()
        self.transform = transform if transform is not None else NoTransform()
        self.backbone = backbone
        self.rnn = rnn
        self.head = nn.Linear(rnn.output_size, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone(self.transform(images))  # (N, D, 1, T)
        if features.shape[2] != 1:
            raise ValueError(f"backbone must reduce the height to 1, got feature map {tuple(features.shape)}")
        sequence = features.squeeze(2).permute(2, 0, 1)  # (T, N, D): column t → frame t
        return self.head(self.rnn(sequence))

    def output_length(self, width: int) -> int:
        """Frames T produced for an image ``width`` pixels wide; CTC needs T ≥ len(label) + adjacent repeats."""
        return self.backbone.output_length(self.transform.output_width(width))

    def output_length_spec(self) -> dict:
        """The frame-count formula, for code that runs the exported model without ours."""
        rectified = self.transform.output_width(0)  # a fixed-size TPS: every input becomes this wide
        width = "rectified_width" if rectified else "W"
        pad = getattr(self.backbone, "width_pad", 0)  # written only when set: every earlier backbone's spec stays as it was
        spec = {"formula": f"T = floor({f'({width} + pad)' if pad else width} / stride) + offset",
                "stride": self.backbone.width_stride, "offset": self.backbone.width_offset}
        if pad:
            spec["pad"] = pad
        if rectified:
            spec["rectified_width"] = rectified
        return spec
