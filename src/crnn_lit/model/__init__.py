"""The network: ``backbone`` (CNN) → ``rnn`` (stacked BiLSTM) → linear head; see ``build_model``."""

from crnn_lit.model.build import build_model
from crnn_lit.model.crnn import CRNN

__all__ = ["CRNN", "build_model"]
