"""Recognition metrics under the scene-text protocol (CRNN paper, DTRB, parseq).

Standard protocol: lowercase both strings, keep only [0-9a-z], exact match. Accents are folded first
(``charset.fold_accents``: NFKD, combining marks dropped, the rule training uses), so SVTP's ``café`` is compared as
``cafe``, not ``caf``. Word accuracy, CER
(edits / reference characters, as torchmetrics' CharErrorRate) and 1-NED (mean of 1 − edits / max length)
are accumulated in one pass with rapidfuzz's C++ Levenshtein, as torchmetrics states so they sync under DDP.

Line protocol (text lines, e.g. SROIE receipts): upper-case both strings, make every run of whitespace one space,
strip the ends, exact match; line accuracy and CER (edits / label characters, summed over the set) as above.
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


def line_normalize(text: str) -> str:
    """The line protocol's comparison form: upper case, every whitespace run one space, the ends stripped."""
    return " ".join(text.upper().split())


def compare_form(text: str, protocol: str = "word", case_sensitive: bool = False) -> str:
    """``text`` as a protocol compares it: ``word`` (``protocol_normalize``) or ``line``
    (``line_normalize``; ``case_sensitive`` does not apply)."""
    if protocol == "line":
        return line_normalize(text)
    if protocol == "word":
        return protocol_normalize(text, case_sensitive)
    raise ValueError(f"protocol must be 'word' or 'line', got {protocol!r}")


class TextMetrics(Metric):
    """Word accuracy, CER and 1-NED over (prediction, target) string pairs.

    ``normalize=False`` compares the strings as given (e.g. charset-normalized labels during training);
    ``normalize=True`` applies the ``protocol``'s comparison form first (``compare_form``: ``word`` for the
    word benchmarks, ``line`` for text lines).
    """

    full_state_update = False

    def __init__(self, normalize: bool = True, case_sensitive: bool = False, protocol: str = "word"):
        super().__init__()
        compare_form("", protocol)  # an unknown protocol fails here
        self.normalize, self.protocol = normalize, protocol
        self.case_sensitive = case_sensitive
        for name in ("correct", "total", "edits", "ref_chars", "ned_sum"):
            self.add_state(name, default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[str], targets: Sequence[str]) -> None:
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
        correct = edits = ref_chars = ned = 0.0
        for p, t in zip(predictions, targets):
            if self.normalize:
                p = compare_form(p, self.protocol, self.case_sensitive)
                t = compare_form(t, self.protocol, self.case_sensitive)
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
