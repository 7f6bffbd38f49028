"""The source protocols, and helpers shared by the file-based sources (skip accounting, a cache of image sizes).

Every source is a :class:`Source`; file-based ones (folder, Synth90k, LMDB, and mixtures/splits of them) are
:class:`FileSource`. Checked structurally (``isinstance`` works: the protocols are runtime-checkable).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from crnn_lit.data.sample import Sample


@runtime_checkable
class Source(Protocol):
    """A map-style dataset of samples; what the data module, mixtures and the renderer provide."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Sample:
        """The i-th sample; raises ``BadSample`` for one that cannot be used (counted, never a crash)."""
        ...

    def size(self, i: int) -> tuple[int, int]:
        """``(width, height)`` of the i-th image without decoding its pixels (width bucketing)."""
        ...


@runtime_checkable
class FileSource(Source, Protocol):
    """A source over stored files: labels and keys without touching images (hold-out splits, the inspector),
    and the encoded bytes (the LMDB converter)."""

    def key(self, i: int) -> str: ...

    def label(self, i: int) -> str: ...

    def raw(self, i: int) -> tuple[bytes, str, str]:
        """``(encoded image bytes, label, key)``."""
        ...


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
