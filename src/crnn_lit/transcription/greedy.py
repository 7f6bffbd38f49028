"""Lexicon-free transcription: l* ≈ B(argmax_π p(π|y)) — the best path, collapsed."""

from __future__ import annotations

import torch

from crnn_lit.transcription.base import Decoded, Decoder
from crnn_lit.transcription.ctc import best_path


class GreedyDecoder(Decoder):
    """Best-path decoding, vectorized over the batch; confidence = p(best path | y)."""

    def _decode(self, log_probs: torch.Tensor, lengths: torch.Tensor, lexicons=None) -> list[Decoded]:
        sequences, path_lp = best_path(log_probs.float(), lengths)
        confidences = path_lp.exp().tolist()
        return [Decoded(self.charset.decode(s), c) for s, c in zip(sequences, confidences)]
