"""Charset: the model's alphabet and the tokenizer that maps labels to CTC targets and back.

Index 0 is the CTC blank; character ``chars[i]`` is class ``i + 1``. The charset travels inside every
checkpoint (``Charset.to_dict``) so a model can always decode its own outputs.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Literal

BLANK = 0
OovPolicy = Literal["drop", "remove"]


def fold_accents(text: str) -> str:
    """The one accent-folding rule of training and scoring: NFKD, combining marks dropped (``café`` → ``cafe``,
    ``ÉTÉ`` → ``ETE``). Scoring folds every label and reading this way (``metrics.protocol_normalize``); a charset
    folds each character it lacks this way (``Charset.canonical``), so under lowercase36 ``café`` trains as ``cafe``
    and scores as ``cafe``, while a charset holding ``é`` keeps it."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


class Charset:
    """Alphabet + label normalization.

    Case folding follows from the alphabet itself: a charset without uppercase letters folds labels to
    lowercase (the paper's 36-class setting), one without lowercase folds to uppercase, one with both keeps case.
    Spaces likewise: a charset holding ``' '`` reads lines, and its labels have every run of whitespace made one
    space (``canonical``: the one place this is said); a word charset only strips the ends, as before, and an
    inner space is out of charset like any other character.
    ``oov`` decides what happens to characters the charset cannot express: ``drop`` the whole sample
    (the honest choice for evaluation) or ``remove`` the character (a usable choice for noisy training labels).
    """

    def __init__(self, chars: str, oov: OovPolicy = "drop", name: str = ""):
        if not chars:
            raise ValueError("charset is empty")
        if len(set(chars)) != len(chars):
            dupes = sorted({c for c in chars if chars.count(c) > 1})
            raise ValueError(f"charset {name or chars[:20]!r} repeats characters: {dupes}")
        if oov not in ("drop", "remove"):
            raise ValueError(f"charset oov policy must be 'drop' or 'remove', got {oov!r}")
        self.chars = chars
        self.oov = oov
        self.name = name
        self._index = {c: i + 1 for i, c in enumerate(chars)}
        has_lower = any(c.islower() for c in chars)
        has_upper = any(c.isupper() for c in chars)
        self.fold: str | None = "lower" if has_lower and not has_upper else "upper" if has_upper and not has_lower else None

    @classmethod
    def from_file(cls, path: str | Path, oov: OovPolicy = "drop") -> Charset:
        """A charset file holds the characters in class order on one line (a trailing newline is ignored); a
        shipped one may be given by name (``lowercase36``)."""
        from crnn_lit.paths import find_asset

        path = find_asset(path, "charsets", "charset file", suffixes=(".txt",))
        chars = path.read_text(encoding="utf-8").rstrip("\r\n")
        return cls(chars, oov=oov, name=path.stem)

    # --- sizes -------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Output classes of the model: every character plus the blank."""
        return len(self.chars) + 1

    def __len__(self) -> int:
        return len(self.chars)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Charset) and self.chars == other.chars

    def __repr__(self) -> str:
        return f"Charset({self.name or 'custom'}, {len(self.chars)} chars, fold={self.fold}, oov={self.oov})"

    # --- labels ------------------------------------------------------------------------------------------
    def normalize(self, label: str) -> str | None:
        """The label as the model should learn it, or ``None`` if the sample must be dropped.

        Unicode is NFKC-normalized first (full-width forms, ligatures), then case-folded per charset, accented
        letters the charset lacks folded to their base (``fold_accents``); characters still out of the charset
        are handled per ``oov``. An empty result is always ``None``.
        """
        text = self.canonical(label)
        if any(c not in self._index for c in text):
            if self.oov == "drop":
                return None
            text = "".join(c for c in text if c in self._index)
        return text or None

    @property
    def has_space(self) -> bool:
        """Whether the charset reads lines (holds a space)."""
        return " " in self._index

    def canonical(self, label: str) -> str:
        """``label`` NFKC-normalized, stripped and case-folded per charset, and each character the charset lacks
        accent-folded (``fold_accents``) when the charset holds what that gives: what ``normalize`` holds
        against the charset, before any character is dropped. With a space in the charset, every run of whitespace
        (tabs, newlines, double spaces) becomes one space: CTC cannot tell one space from two (a run of space
        frames is one space), so a label must not ask for two."""
        text = unicodedata.normalize("NFKC", label)
        text = " ".join(text.split()) if self.has_space else text.strip()
        text = text.lower() if self.fold == "lower" else text.upper() if self.fold == "upper" else text
        if all(c in self._index for c in text):
            return text
        return "".join(c if c in self._index else self._folded(c) for c in text)

    def _folded(self, char: str) -> str:
        folded = fold_accents(char)
        return folded if folded and all(c in self._index for c in folded) else char

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def encode(self, text: str) -> list[int]:
        """Class indices (1-based) of an already normalized label."""
        try:
            return [self._index[c] for c in text]
        except KeyError as err:
            raise ValueError(f"character {err.args[0]!r} of {text!r} is not in the charset {self!r}") from None

    def decode(self, indices) -> str:
        """Characters of class indices (no CTC collapsing here; blanks are skipped)."""
        return "".join(self.chars[i - 1] for i in indices if i != BLANK)

    # --- persistence -------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"chars": self.chars, "oov": self.oov, "name": self.name}

    @classmethod
    def from_dict(cls, d: dict) -> Charset:
        return cls(d["chars"], oov=d.get("oov", "drop"), name=d.get("name", ""))
