"""The reference N_δ retrieval, a test oracle: a linear scan (the definition). The paper's BK-tree, which
bench/decode_speed.py times too, is ``crnn_lit.transcription.candidates.BKTree``."""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import Levenshtein

from crnn_lit.transcription.candidates import CandidateIndex


class LinearScan(CandidateIndex):
    """The reference: the distance to every word, one by one."""

    name = "linear"

    def search(self, query: str, delta: int) -> np.ndarray:
        return np.array([i for i, w in enumerate(self.words) if Levenshtein.distance(query, w) <= delta],
                        dtype=np.int64)
