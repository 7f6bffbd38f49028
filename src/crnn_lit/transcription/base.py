"""The one decoder interface used by validation, evaluation, prediction and exported-model post-processing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from crnn_lit.charset import Charset


@dataclass(frozen=True)
class Prediction:
    text: str
    confidence: float  # probability of the returned labelling (greedy: of its best path), in [0, 1]


class Decoder:
    """``decode(log_probs (T, N, C), lengths (N,), lexicons=None) → list[Prediction]`` (one per image).

    ``lexicons`` is for lexicon-based decoders: one word list per image (or None). Decoders that do not use a
    lexicon ignore it.
    """

    def __init__(self, charset: Charset):
        self.charset = charset

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor,
               lexicons: Sequence[Sequence[str] | None] | None = None) -> list[Prediction]:
        raise NotImplementedError

    def __call__(self, log_probs, lengths, lexicons=None) -> list[Prediction]:
        return self.decode(log_probs, lengths, lexicons)
