"""Transcription layer: per-frame distributions → text (lexicon-free greedy now; beam and lexicon plug in here)."""

from crnn_lit.transcription.base import Decoder, Prediction
from crnn_lit.transcription.ctc import best_path, collapse
from crnn_lit.transcription.greedy import GreedyDecoder

__all__ = ["Decoder", "GreedyDecoder", "Prediction", "best_path", "collapse"]
