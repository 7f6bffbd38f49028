"""Recognition metrics under the scene-text protocol (CRNN paper, DTRB, parseq).

Standard protocol: lowercase both strings, keep only [0-9a-z], exact match. Accents are folded first
(``charset.fold_accents``: NFKD, combining marks dropped, the rule training uses), so SVTP's ``café`` is compared as
``cafe``, not ``caf``. Word accuracy, CER
(edits / reference characters, as torchmetrics' CharErrorRate) and 1-NED (mean of 1 − edits / max length)
are accumulated in one pass with rapidfuzz's C++ Levenshtein, as torchmetrics states so they sync under DDP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from rapidfuzz.distance import Levenshtein
from torchmetrics import Metric

from crnn_lit.charset import fold_accents

_NOT_ALNUM_LOWER = re.compile(r"[^0-9a-z]")
_NOT_ALNUM = re.compile(r"[^0-9a-zA-Z]")


def protocol_normalize(text: str, case_sensitive: bool = False) -> str:
    """The standard STR comparison form: [0-9a-z] only (or [0-9a-zA-Z] with ``case_sensitive``), accents folded
    by the rule training folds them with (``charset.fold_accents``)."""
    text = fold_accents(text)
    if case_sensitive:
        return _NOT_ALNUM.sub("", text)
    return _NOT_ALNUM_LOWER.sub("", text.lower())


class TextMetrics(Metric):
    """Word accuracy, CER and 1-NED over (prediction, target) string pairs.

    ``normalize=False`` compares the strings as given (e.g. charset-normalized labels during training);
    ``normalize=True`` applies ``protocol_normalize`` first (benchmarks).
    """

    full_state_update = False

    def __init__(self, normalize: bool = True, case_sensitive: bool = False):
        super().__init__()
        self.normalize = normalize
        self.case_sensitive = case_sensitive
        for name in ("correct", "total", "edits", "ref_chars", "ned_sum"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[str], targets: Sequence[str]) -> None:
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
        correct = edits = ref_chars = ned = 0.0
        for p, t in zip(predictions, targets):
            if self.normalize:
                p, t = protocol_normalize(p, self.case_sensitive), protocol_normalize(t, self.case_sensitive)
            d = Levenshtein.distance(p, t)
            correct += p == t
            edits += d
            ref_chars += len(t)
            ned += 1.0 - (d / max(len(p), len(t)) if (p or t) else 0.0)
        self.correct += correct
        self.total += len(targets)
        self.edits += edits
        self.ref_chars += ref_chars
        self.ned_sum += ned

    def compute(self) -> dict[str, torch.Tensor]:
        total = self.total.clamp(min=1)
        return {
            "acc": (self.correct / total).float(),
            "cer": (self.edits / self.ref_chars.clamp(min=1)).float(),
            "ned": (self.ned_sum / total).float(),
        }
