"""The source protocols, and helpers shared by the file-based sources (skip accounting, image sizes: a cache per
run and an index per archive).

Every source is a ``Source``; file-based ones (folder, Synth90k, LMDB, and mixtures/splits of them) are
``FileSource``. Checked structurally (``isinstance`` works: the protocols are runtime-checkable). A source
may also offer ``sizes(indices) -> (n, 2) array``, the sizes of many samples in one call (the batch sampler asks
for a whole epoch's); ``sizes_of`` falls back to one ``size(i)`` call per sample.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from crnn_lit.atomic import atomic_write

if TYPE_CHECKING:
    from crnn_lit.data.sample import Sample

log = logging.getLogger(__name__)


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


def sizes_of(source, indices: np.ndarray) -> np.ndarray:
    """``(len(indices), 2)`` (width, height) of the samples ``indices``: ``source.sizes`` if the source has it,
    else one ``source.size(i)`` call per sample (the renderer computes each width from the word's layout)."""
    indices = np.asarray(indices, dtype=np.int64)
    if hasattr(source, "sizes"):
        return source.sizes(indices)
    return np.array([source.size(i) for i in indices.tolist()], dtype=np.int64).reshape(len(indices), 2)


def index_skips(source) -> str:
    """What ``source`` and the sources inside it (hold-out splits, mixtures) skipped while reading their
    indexes, as ``SkipLog.summary`` lines; "" when nothing was skipped."""
    parts = [source.skipped.summary()] if getattr(source, "skipped", None) else []
    inner = [getattr(source, "source", None), *getattr(source, "sources", [])]
    return "; ".join(parts + [s for s in (index_skips(i) for i in inner if i is not None) if s])


def index_sizes(source) -> None:
    """Read or build now the stored size indexes of ``source`` and of the sources inside it (``index_sizes`` of an
    LMDB archive; hold-out splits and mixtures pass it on; other sources have none)."""
    if hasattr(source, "index_sizes"):
        source.index_sizes()
    for inner in [getattr(source, "source", None), *getattr(source, "sources", [])]:
        if inner is not None:
            index_sizes(inner)


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

    def many(self, indices: np.ndarray, compute: Callable[[int], tuple[int, int] | None]) -> np.ndarray:
        """``get`` for an array of indices: one table lookup, ``compute`` only for the indices not seen yet."""
        sizes = self._sizes[indices]
        todo = sizes[:, 0] < 0
        if todo.any():
            for index in np.unique(indices[todo]).tolist():
                self.get(index, compute)
            sizes = self._sizes[indices]
        return sizes

    def put(self, index: int, size: tuple[int, int]) -> None:
        self._sizes[index] = size


def cache_dir(configured: str | Path | None = None) -> Path:
    """Where crnn_lit keeps what it derives from data it cannot write next to: ``configured``, else
    ``$CRNN_LIT_CACHE``, else ``$XDG_CACHE_HOME/crnn_lit`` (``~/.cache/crnn_lit``)."""
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("CRNN_LIT_CACHE"):
        return Path(os.environ["CRNN_LIT_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crnn_lit"


class SizeIndex:
    """The (width, height) of every sample of one archive, stored once: later runs read one file instead of a
    header per sample.

    Written beside the archive (``<folder>/crnn_lit_sizes.npz``) when that folder is writable, else (archives are
    often read-only) in ``<cache>/sizes/<hash of the folder's path>.npz``. The file also holds the archive's
    ``identity`` (a string the source derives from its files, e.g. size, mtime and last transaction): one whose
    identity differs from the archive's is stale, ignored and replaced.
    """

    NAME = "crnn_lit_sizes.npz"

    def __init__(self, folder: Path, identity: str, cache: Path):
        self.folder, self.identity = folder, identity
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:24]
        self.beside, self.cached = folder / self.NAME, cache / "sizes" / f"{digest}.npz"

    def load(self) -> np.ndarray | None:
        """The stored sizes if an index of this archive in its current state exists, else None."""
        for path in (self.beside, self.cached):
            try:
                with np.load(path, allow_pickle=False) as stored:
                    if str(stored["identity"]) == self.identity:
                        log.debug("sizes of %s read from %s", self.folder, path)
                        return stored["sizes"]
            except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
                continue  # missing, or unreadable: build it again
        return None

    def save(self, sizes: np.ndarray) -> Path | None:
        """Store ``sizes`` (beside the archive if its folder is writable, else in the cache folder), atomically:
        readers never see a half-written index. None (and a warning) if neither place takes it."""
        errors = []
        for path in (self.beside, self.cached):
            if path == self.beside and not os.access(self.folder, os.W_OK):
                continue
            try:
                with atomic_write(path) as f:
                    np.savez(f, sizes=sizes, identity=np.array(self.identity))
            except OSError as err:
                errors.append(f"{path}: {err}")
                continue
            log.info("sizes of %s (%d samples) stored in %s", self.folder, len(sizes), path)
            return path
        log.warning("sizes of %s not stored (every run reads them again): %s", self.folder,
                    "; ".join(errors) or "folder read-only")
        return None
