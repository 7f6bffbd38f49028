"""The network: ``backbone`` (CNN) → ``rnn`` (stacked BiLSTM) → linear head; see ``build_model`` and the named
networks ``crnn_paper``, ``crnn_light``, ``crnn_medium``."""

from crnn_lit.model.build import build_model, crnn, crnn_light, crnn_medium, crnn_paper
from crnn_lit.model.crnn import CRNN

__all__ = ["CRNN", "build_model", "crnn", "crnn_light", "crnn_medium", "crnn_paper"]
