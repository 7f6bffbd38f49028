"""The one decoder interface used by validation, evaluation, prediction and exported-model post-processing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from crnn_lit.charset import Charset
from crnn_lit.knobs import Knob, check

if TYPE_CHECKING:
    from crnn_lit.transcription.lm import LMFusion


@dataclass(frozen=True)
class Decoded:
    """What a decoder reads from one image's frames (``Recognizer`` turns it into a ``Prediction``, which adds the
    image it came from and where each character sits)."""

    text: str
    confidence: float  # probability of the returned labelling (greedy: of its best path), in [0, 1]
    # a beam's final prefixes, best (by the search's score, LM included) first: (text, p(text|y)) each
    alternatives: tuple[tuple[str, float], ...] = ()


class Decoder:
    """``decode(log_probs (T, N, C), lengths (N,), lexicons=None) → list[Decoded]`` (one per image).

    ``lexicons`` is for lexicon-based decoders: one word list per image (or None). Decoders that do not use a
    lexicon ignore it.

    ``allowed_chars`` / ``blocked_chars`` restrict the output at decode time (e.g. ``"0123456789"`` to read a
    number): the classes of the other characters are removed from every frame's distribution and the rest
    renormalized before any decoding, so every decoder (and a lexicon's words) sees only what may be read.
    Characters are matched after the charset's case folding; one the charset cannot produce is an error.
    """

    def __init__(self, charset: Charset, allowed_chars: str | None = None, blocked_chars: str | None = None):
        self.charset = charset
        self.allowed_chars, self.blocked_chars = allowed_chars, blocked_chars
        self._masked = _masked_classes(charset, allowed_chars, blocked_chars)

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor,
               lexicons: Sequence[Sequence[str] | None] | None = None) -> list[Decoded]:
        if self._masked is not None:
            log_probs = log_probs.float().index_fill(-1, self._masked, float("-inf")).log_softmax(-1)
        return self._decode(log_probs, lengths, lexicons)

    def _decode(self, log_probs: torch.Tensor, lengths: torch.Tensor,
                lexicons: Sequence[Sequence[str] | None] | None) -> list[Decoded]:
        raise NotImplementedError

    def __call__(self, log_probs, lengths, lexicons=None) -> list[Decoded]:
        return self.decode(log_probs, lengths, lexicons)


def _masked_classes(charset: Charset, allowed: str | None, blocked: str | None) -> torch.Tensor | None:
    """Class indices that may not be emitted (never the blank, 0); None when nothing is masked."""
    if not allowed and not blocked:
        return None

    def classes(chars: str, what: str) -> set[int]:
        folded = {c.lower() if charset.fold == "lower" else c.upper() if charset.fold == "upper" else c for c in chars}
        unknown = sorted(c for c in folded if c not in charset.chars)
        if unknown:
            raise ValueError(f"{what} {''.join(unknown)!r}: not in the model's charset {charset.chars!r}")
        return {charset.chars.index(c) + 1 for c in folded}

    keep = classes(allowed, "allowed_chars") if allowed else set(range(1, charset.num_classes))
    if blocked:
        keep -= classes(blocked, "blocked_chars")
    if not keep:
        raise ValueError("allowed_chars/blocked_chars leave no character to read")
    masked = sorted(set(range(1, charset.num_classes)) - keep)
    return torch.tensor(masked, dtype=torch.long) if masked else None


FUSION_KNOBS = {"lm_weight": Knob(float, 0), "length_bonus": Knob(float)}  # of every decoder that fuses an LM


def lm_fusion(lm: str | Path | None, charset: Charset, lm_weight: float, length_bonus: float) -> LMFusion | None:
    """The language-model fusion of a decoder's ``lm``, ``lm_weight`` (α) and ``length_bonus`` (β) arguments:
    the LM file at ``lm`` fused as log p(l|y) + α·log P_LM(l) + β·|l|; None when ``lm`` is not given."""
    check(FUSION_KNOBS, lm_weight=lm_weight, length_bonus=length_bonus)
    if not lm:
        return None
    from crnn_lit.transcription.lm import CharNgramLM, LMFusion  # lm runs as a CLI too (python -m ...lm)

    return LMFusion(CharNgramLM.load(lm), charset, lm_weight, length_bonus)
