"""Helpers shared by the file-based sources: load-time skip accounting and a cache of image sizes.

Every source is a map-style dataset of ``Sample`` with ``__len__``, ``__getitem__`` (raising ``BadSample`` for
unusable samples) and ``size(i) -> (width, height)`` without decoding pixels. File-based sources (folder,
Synth90k, LMDB, and mixtures/splits of them) also offer ``key(i)`` and ``label(i)`` without touching the image
(used by hold-out splits and the inspector) and ``raw(i) -> (encoded image bytes, label, key)`` (the converter).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import numpy as np


class SkipLog:
    """Counts what a source skipped while reading its index, keeps the first few examples per reason, and
    reports everything in one log line (never one line per bad record: real archives have thousands)."""

    def __init__(self, examples: int = 3):
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.max_examples = examples

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < self.max_examples:
            shown.append(example)

    def __bool__(self) -> bool:
        return bool(self.counts)

    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        parts = []
        for reason, count in sorted(self.counts.items()):
            shown = "; ".join(self.examples.get(reason, []))
            parts.append(f"{reason}={count} (e.g. {shown})")
        return ", ".join(parts)

    def report(self, log: logging.Logger, what: str, kept: int) -> None:
        if self:
            log.warning("%s: kept %d samples, skipped %d: %s", what, kept, self.total(), self.summary())


class SizeCache:
    """(width, height) per index, computed on first use and kept (the sampler asks again every epoch).

    Lives in the process that builds the batches (the main process), so one header read per sample per run.
    An unreadable header gets ``fallback`` (a plausible size): the sample itself is rejected when decoded.
    """

    def __init__(self, n: int, fallback: tuple[int, int] = (100, 32)):
        self._sizes = np.full((n, 2), -1, dtype=np.int32)
        self._fallback = fallback

    def get(self, index: int, compute: Callable[[int], tuple[int, int] | None]) -> tuple[int, int]:
        w, h = self._sizes[index]
        if w < 0:
            w, h = compute(index) or self._fallback
            self._sizes[index] = (w, h)
        return int(w), int(h)

    def put(self, index: int, size: tuple[int, int]) -> None:
        self._sizes[index] = size
