"""Sequence labelling layers: (T, N, D) features → (T, N, output_size) context-aware features."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import nn

from crnn_lit.knobs import SIZE, Knob, Knobs, check


class BidirectionalLayer(nn.Module):
    """One bidirectional LSTM/GRU layer; its two directions are optionally mixed by a linear projection.

    The projection is how the paper's 8.3 M-parameter model joins directions between stacked layers
    (and why the second layer's input is ``hidden_size`` wide rather than ``2 * hidden_size``).
    """

    def __init__(self, input_size: int, hidden_size: int, cell: Literal["lstm", "gru"], project_to: int | None):
        super().__init__()
        rnn_cls = {"lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_cls(input_size, hidden_size, bidirectional=True)
        self.project = nn.Linear(2 * hidden_size, project_to) if project_to else None
        self.output_size = project_to or 2 * hidden_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)
        return self.project(y) if self.project is not None else y


class SequenceModel(nn.Module):
    """Stacked bidirectional RNN (paper: 2 × BiLSTM, 256 units per direction), or no RNN at all.

    ``cell="none"`` passes the CNN features straight to the head (a fully convolutional CTC model, useful
    as an ablation and for the fastest inference). ``project`` adds a linear layer after every layer but
    the last, mapping 2·hidden → hidden.
    """

    KNOBS: ClassVar[Knobs] = {"hidden_size": SIZE, "num_layers": SIZE, "dropout": Knob(float, 0, 1)}

    def __init__(self, input_size: int, hidden_size: int = 256, num_layers: int = 2,
                 cell: Literal["lstm", "gru", "none"] = "lstm", project: bool = True, dropout: float = 0.0):
        super().__init__()
        if cell not in ("lstm", "gru", "none"):
            raise ValueError(f"rnn.cell must be lstm, gru or none, got {cell!r}")
        check(self.KNOBS, "rnn.", hidden_size=hidden_size, num_layers=num_layers, dropout=dropout)
        layers: list[nn.Module] = []
        size = input_size
        if cell != "none":
            for i in range(num_layers):
                last = i == num_layers - 1
                layer = BidirectionalLayer(size, hidden_size, cell, None if last or not project else hidden_size)
                layers.append(layer)
                size = layer.output_size
                if dropout and not last:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
