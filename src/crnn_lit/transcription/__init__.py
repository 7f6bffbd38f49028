"""Transcription layer: per-frame distributions → text.

Lexicon-free: ``GreedyDecoder`` (best path) and ``BeamDecoder`` (CTC prefix beam search). Lexicon-based:
``LexiconDecoder`` (exact p(l|y) over a per-image list or over N_δ(l′) of a global ``Lexicon``). By name, with
their settings (conf/decoder calls these): ``decoder("beam_lm", charset)``, ``beam_lm(charset)``.
"""

from crnn_lit.transcription.base import Decoded, Decoder
from crnn_lit.transcription.beam import BeamDecoder
from crnn_lit.transcription.candidates import (
    BKTree,
    CandidateIndex,
    RapidfuzzIndex,
    SymDeleteIndex,
)
from crnn_lit.transcription.ctc import best_path, collapse, ctc_log_likelihoods
from crnn_lit.transcription.greedy import GreedyDecoder
from crnn_lit.transcription.lexicon import Lexicon, LexiconDecoder, load_lexicon
from crnn_lit.transcription.presets import DECODERS, beam_lm, decoder

__all__ = [
    "DECODERS",
    "BKTree",
    "BeamDecoder",
    "CandidateIndex",
    "Decoded",
    "Decoder",
    "GreedyDecoder",
    "Lexicon",
    "LexiconDecoder",
    "RapidfuzzIndex",
    "SymDeleteIndex",
    "beam_lm",
    "best_path",
    "collapse",
    "ctc_log_likelihoods",
    "decoder",
    "load_lexicon",
]
