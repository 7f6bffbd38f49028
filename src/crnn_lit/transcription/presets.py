"""The decoders by name — ``greedy``, ``beam``, ``beam_lm``, ``lexicon`` — with their settings in Python.

A name is a decoder class and the arguments it is given beyond the class's own defaults; conf/decoder/<name>.yaml
composes exactly this (``crnn_lit.config.register_python_configs``), so the command line and
``Recognizer.from_pretrained(decoder=...)`` build the same decoder, and each default has one copy.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crnn_lit.charset import Charset
from crnn_lit.transcription.base import Decoder
from crnn_lit.transcription.beam import BeamDecoder
from crnn_lit.transcription.greedy import GreedyDecoder
from crnn_lit.transcription.lexicon import LexiconDecoder

# the shipped character 6-gram LM (data/lm/README.md), found by name (crnn_lit.paths.find_asset)
SHIPPED_LM = "english_char6"
# the shipped LM fused with α = 0.7, β = 1.5, chosen on the real_train hold-out for the shipped CRNN (the grid in
# bench/results/lm_fusion.json), never on a benchmark
LM_FUSION = {"lm": SHIPPED_LM, "lm_weight": 0.7, "length_bonus": 1.5}
DECODERS: dict[str, tuple[type[Decoder], dict[str, Any]]] = {
    "greedy": (GreedyDecoder, {}),  # best path, the paper's lexicon-free decoding (eq. 2)
    "beam": (BeamDecoder, {}),  # CTC prefix beam search
    "beam_lm": (BeamDecoder, LM_FUSION),  # beam + LM shallow fusion
    "lexicon": (LexiconDecoder, {}),  # exact p(l|y) over a lexicon (paper §2.4)
    # open vocabulary over a large lexicon: its word only when it beats the lexicon-free reading l' by open_ratio
    # under beam_lm's fused score (log p(l|y) + α·log P_LM(l) + β·|l|); 10 calibrated for the shipped CRNN on the
    # real_train hold-out (the grid in bench/results/open_lexicon.json), never on a benchmark. evaluate's "open"
    # lexicon columns read with it
    "lexicon_lm": (LexiconDecoder, {**LM_FUSION, "open_ratio": 10.0}),
}


# The decoding a model records as its own (crnn_lit.checkpoint: the settings chosen for it on the real_train
# hold-out); a model without one reads with beam_lm. Recognizer resolves it once it has loaded the model.
MODEL_DECODING = "model"


@dataclass(frozen=True)
class ModelDecoding:
    """``decoder="model"`` with the options every decoder takes (conf/decoder/model.yaml instantiates it): the
    model's own decoding, restricted to ``allowed_chars`` / without ``blocked_chars`` when given."""

    allowed_chars: str | None = None
    blocked_chars: str | None = None

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in (("allowed_chars", self.allowed_chars), ("blocked_chars", self.blocked_chars))
                if v is not None}


def decoder_settings(name: str) -> dict[str, Any]:
    """Every argument of decoder ``name`` but the charset, with its value: the class's defaults, then the name's."""
    cls, preset = _named(name)
    params = list(inspect.signature(cls.__init__).parameters.values())[2:]  # after self, charset
    return {**{p.name: p.default for p in params if p.default is not p.empty}, **preset}


def decoder(name: str, charset: Charset, **options) -> Decoder:
    """Decoder ``name`` for ``charset``; ``options`` replace its settings (``beam_width=5``, ``lexicon=[...]``)."""
    cls, preset = _named(name)
    return cls(charset, **{**preset, **options})


def beam_lm(charset: Charset, **options) -> BeamDecoder:
    """Beam search with the shipped LM fused (α 0.7, β 1.5): what ``Recognizer`` reads with by default."""
    return decoder("beam_lm", charset, **options)


def _named(name: str) -> tuple[type[Decoder], Mapping[str, Any]]:
    if name not in DECODERS:
        raise ValueError(f"unknown decoder {name!r}; named ones: {', '.join(DECODERS)}")
    return DECODERS[name]
