"""The network: ``backbone`` (CNN) → ``rnn`` (stacked BiLSTM, or PP-OCR's neck) → linear head; see ``build_model``
and the named networks ``crnn_paper``, ``crnn_light``, ``crnn_medium``, ``ppocr_v6_small``, ``ppocr_v6_tiny``."""

from crnn_lit.model.build import (
    build_model,
    crnn,
    crnn_light,
    crnn_medium,
    crnn_paper,
    ppocr_v6_small,
    ppocr_v6_tiny,
)
from crnn_lit.model.crnn import CRNN

__all__ = ["CRNN", "build_model", "crnn", "crnn_light", "crnn_medium", "crnn_paper", "ppocr_v6_small",
           "ppocr_v6_tiny"]
