"""Several sources as one: concatenation with per-source sampling ratios, and a deterministic hold-out split.

``MixedSource`` puts its sources side by side in one index space (source k owns a contiguous range) and prefixes
every sample key with the source's name (``real:iiit5k:images/1009_2.png``). Each training epoch,
``epoch_indices(rng, n)`` — which the ``EpochSampler`` calls when a source offers it — splits the ``n`` draws
between the sources by ratio and, inside each, walks through fresh permutations (every sample once before any
repeats; huge virtual sources such as the renderer get uniform random draws instead).

``HoldoutSplit`` selects the train or the validation side of a source by a hash of each sample's key: the same
sample always lands on the same side, whatever the order, the machine or the number of workers.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from torch.utils.data import Dataset

from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.base import sizes_of
from crnn_lit.knobs import Knob, Knobs, check

log = logging.getLogger(__name__)

# above this many samples a source is drawn from uniformly at random rather than by permutation
_PERMUTE_LIMIT = 1 << 26


def draw_indices(rng: np.random.Generator, size: int, count: int) -> np.ndarray:
    """``count`` indices of ``range(size)``: whole permutations first, then part of one more (each index appears
    ⌊count/size⌋ or ⌈count/size⌉ times); above ``_PERMUTE_LIMIT`` uniform draws with replacement."""
    if count <= 0 or size <= 0:
        return np.zeros(0, dtype=np.int64)
    if size > _PERMUTE_LIMIT:
        return rng.integers(0, size, size=count, dtype=np.int64)
    rounds, rest = divmod(count, size)
    parts = [rng.permutation(size) for _ in range(rounds)]
    if rest:
        parts.append(rng.permutation(size)[:rest])
    return np.concatenate(parts).astype(np.int64)


def split_counts(total: int, weights: list[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders, so the counts sum to ``total``)."""
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(np.int64)
    for k in np.argsort(-(exact - counts), kind="stable")[: total - int(counts.sum())]:
        counts[k] += 1
    return counts.tolist()


class MixedSource(Dataset):
    """``sources``: name → source; ``ratios``: name → share of each epoch's draws (normalized; ``None`` =
    proportional to the sources' sizes, i.e. a plain concatenation). Every source needs ``__len__``,
    ``__getitem__`` and ``size``; ``key``/``label``/``raw`` are passed through when the sources have them."""

    def __init__(self, sources: Mapping, ratios: Mapping | None = None):
        self.names = [str(k) for k in sources]
        self.sources = [sources[k] for k in sources]
        if not self.sources:
            raise ValueError("MixedSource needs at least one source")
        lengths = [len(s) for s in self.sources]
        if ratios is None:
            self.ratios = [n / max(sum(lengths), 1) for n in lengths]
        else:
            ratios = {str(k): float(v) for k, v in ratios.items()}
            unknown, missing = set(ratios) - set(self.names), set(self.names) - set(ratios)
            if unknown or missing:
                raise ValueError(f"ratios must name exactly the sources {self.names}; "
                                 f"unknown: {sorted(unknown)}, missing: {sorted(missing)}")
            if any(r < 0 for r in ratios.values()) or sum(ratios.values()) <= 0:
                raise ValueError(f"ratios must be ≥ 0 and not all 0, got {ratios}")
            total = sum(ratios.values())
            self.ratios = [ratios[n] / total for n in self.names]
        for name, n, r in zip(self.names, lengths, self.ratios, strict=True):
            if r > 0 and n == 0:
                raise ValueError(f"source {name!r} is empty but has sampling ratio {r:.2f}")
        self._ends = np.cumsum(lengths, dtype=np.int64)
        log.info("mixed source: %s", ", ".join(
            f"{n} {r:.0%} of draws ({k:,} samples)" for n, r, k in zip(self.names, self.ratios, lengths, strict=True)))

    def __len__(self) -> int:
        return int(self._ends[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a MixedSource of {len(self)}")
        k = int(np.searchsorted(self._ends, index, side="right"))
        return k, index - (int(self._ends[k - 1]) if k else 0)

    def epoch_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` global indices for one epoch, split between the sources by ratio, in random order."""
        parts = []
        for k, count in enumerate(split_counts(n, self.ratios)):
            src, start = self.sources[k], int(self._ends[k - 1]) if k else 0
            if hasattr(src, "epoch_indices"):
                local = np.asarray(src.epoch_indices(rng, count), dtype=np.int64)
            else:
                local = draw_indices(rng, len(src), count)
            parts.append(local + start)
        return rng.permutation(np.concatenate(parts))

    def size(self, index: int) -> tuple[int, int]:
        k, j = self._locate(index)
        return self.sources[k].size(j)

    def sizes(self, indices: np.ndarray) -> np.ndarray:
        """``size`` of many samples, each source asked once for all of its own (``sizes_of``)."""
        indices = np.asarray(indices, dtype=np.int64)
        owner = np.searchsorted(self._ends, indices, side="right")
        out = np.empty((len(indices), 2), dtype=np.int64)
        for k in np.unique(owner).tolist():
            mine = owner == k
            out[mine] = sizes_of(self.sources[k], indices[mine] - (int(self._ends[k - 1]) if k else 0))
        return out

    def key(self, index: int) -> str:
        k, j = self._locate(index)
        return f"{self.names[k]}:{self.sources[k].key(j)}"

    def label(self, index: int) -> str:
        k, j = self._locate(index)
        return self.sources[k].label(j)

    def raw(self, index: int) -> tuple[bytes, str, str]:
        k, j = self._locate(index)
        try:
            data, label, key = self.sources[k].raw(j)
        except BadSample as err:
            raise BadSample(err.reason, f"{self.names[k]}:{err.key}", err.detail) from None
        return data, label, f"{self.names[k]}:{key}"

    def __getitem__(self, index: int) -> Sample:
        k, j = self._locate(index)
        try:
            sample = self.sources[k][j]
        except BadSample as err:
            raise BadSample(err.reason, f"{self.names[k]}:{err.key}", err.detail) from None
        return Sample(sample.image, sample.label, f"{self.names[k]}:{sample.key}")

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={r:.2f}×{len(s)}" for n, r, s in zip(self.names, self.ratios, self.sources, strict=True))
        return f"MixedSource({parts})"


def holdout_score(key: str, salt: str = "") -> float:
    """A stable pseudo-random number in [0, 1) for ``key`` (same on every machine and Python run)."""
    digest = hashlib.blake2b(f"{salt}{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


class HoldoutSplit(Dataset):
    """The ``train`` or ``val`` side of ``source``: a sample is on the validation side iff
    ``holdout_score(source.key(i), salt) < fraction``. Both sides together are exactly the source, with no
    overlap. The source needs ``key(i)`` (read without decoding the image).

    ``group``: a regular expression over keys; a key it matches is scored by its groups instead, so that every
    crop of one scene falls on the same side (crops of one photo, or IC15's consecutive frames of one shop
    front: a crop-level split lets a model be chosen for memorising the scenes it trained on)."""

    KNOBS: ClassVar[Knobs] = {"fraction": Knob(float, 0, 1)}

    def __init__(self, source, part: str = "train", fraction: float = 0.1, salt: str = "", group: str | None = None):
        if part not in ("train", "val"):
            raise ValueError(f"part must be 'train' or 'val', got {part!r}")
        check(self.KNOBS, fraction=fraction)
        self.source, self.part, self.fraction = source, part, fraction
        pattern = re.compile(group) if group else None

        def unit(key: str) -> str:  # what is held out together
            match = pattern.fullmatch(key) if pattern else None
            return key if match is None else "group:" + "|".join(map(str, match.groups()))

        held = np.fromiter((holdout_score(unit(source.key(i)), salt) < fraction for i in range(len(source))),
                           dtype=bool, count=len(source))
        self.indices = np.flatnonzero(held if part == "val" else ~held)

    def __len__(self) -> int:
        return len(self.indices)

    def _inner(self, index: int) -> int:
        return int(self.indices[index])

    def size(self, index: int) -> tuple[int, int]:
        return self.source.size(self._inner(index))

    def sizes(self, indices: np.ndarray) -> np.ndarray:
        return sizes_of(self.source, self.indices[indices])

    def key(self, index: int) -> str:
        return self.source.key(self._inner(index))

    def label(self, index: int) -> str:
        return self.source.label(self._inner(index))

    def raw(self, index: int) -> tuple[bytes, str, str]:
        return self.source.raw(self._inner(index))

    def __getitem__(self, index: int) -> Sample:
        return self.source[self._inner(index)]

    def __repr__(self) -> str:
        return f"HoldoutSplit({self.part}, {self.fraction:.0%} held out, {len(self)} of {len(self.source)})"
