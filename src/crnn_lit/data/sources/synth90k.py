"""Synth90k / MJSynth (Jaderberg et al. 2014) read as distributed.

Layout: ``<root>/annotation_{train,val,test}.txt`` with lines ``./2697/6/466_MONIKER_49537.jpg 49537`` and
``<root>/lexicon.txt`` (line i, 0-based, = word i). The label is the word in the file name (between the first
and the last underscore); the number after the path indexes the lexicon, and we check that both agree
(case-insensitively) and count the disagreements. A few images of the archive are corrupt or zero bytes long:
they raise ``BadSample`` when read and are skipped and counted by the training loop.

Memory: the 7.2 M training paths are kept in one bytes blob plus an offset array, not as 7 M Python strings —
DataLoader workers touching millions of refcounted objects would each end up with a private copy.
"""

from __future__ import annotations

import logging
from array import array
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.base import SizeCache, SkipLog
from crnn_lit.data.sources.image_io import decode_image, image_size

log = logging.getLogger(__name__)

# MJSynth crops are 32 px high and tight around the word; their width grows with the word. Reading 7 M JPEG
# headers just to bucket by width takes minutes on a cold disk, so by default the sampler uses this estimate
# (px per character at height 32, plus margins) and the collate pads to the true width. ``widths="header"``
# reads the real sizes instead (once per sample, cached).
_PX_PER_CHAR, _MARGIN_PX = 16, 8


def _word(path: bytes) -> bytes | None:
    """``2697/6/466_MONIKER_49537.jpg`` → ``MONIKER`` (None if the name does not follow the pattern)."""
    name = path.rsplit(b"/", 1)[-1]
    first, last = name.find(b"_"), name.rfind(b"_")
    return name[first + 1:last] if 0 <= first < last else None


class Synth90k(Dataset):
    """``split`` ∈ train / val / test; ``limit`` keeps the first N lines; ``widths`` = estimate | header.

    ``skipped`` counts malformed annotation lines; ``lexicon_mismatches`` counts lines whose file-name word and
    lexicon entry differ (the file name wins: it is what was rendered).
    """

    def __init__(self, root: str, split: str = "train", limit: int | None = None, widths: str = "estimate"):
        self.root = Path(root)
        annotation = self.root / f"annotation_{split}.txt"
        if not annotation.is_file():
            raise FileNotFoundError(
                f"data.root={root!s} does not look like the Synth90k archive: {annotation.name} is missing "
                "(expected the folder 90kDICT32px with annotation_train.txt, annotation_val.txt and lexicon.txt)")
        if widths not in ("estimate", "header"):
            raise ValueError(f"widths must be 'estimate' or 'header', got {widths!r}")
        self.widths = widths
        lexicon = self._read_lexicon()
        blob = bytearray()
        offsets = array("q", [0])
        lengths = array("H")
        self.skipped = SkipLog()
        mismatches = SkipLog()
        with open(annotation, "rb") as f:
            for lineno, line in enumerate(f, start=1):
                if limit is not None and len(lengths) >= limit:
                    break
                parts = line.split()
                if not parts:
                    continue
                path = parts[0].removeprefix(b"./")
                word = _word(path)
                if len(parts) != 2 or not word:
                    self.skipped.add("malformed_line", f"{annotation.name}:{lineno} {line[:60]!r}")
                    continue
                if lexicon is not None:
                    idx = int(parts[1]) if parts[1].isdigit() else -1
                    if not 0 <= idx < len(lexicon) or lexicon[idx] != word.lower():
                        entry = lexicon[idx].decode(errors="replace") if 0 <= idx < len(lexicon) else "(out of range)"
                        mismatches.add("lexicon_mismatch", f"{path.decode(errors='replace')} vs lexicon[{parts[1].decode(errors='replace')}]={entry!r}")
                blob += path
                offsets.append(len(blob))
                lengths.append(min(len(word), 65535))
        self._blob = bytes(blob)
        self._offsets = np.frombuffer(offsets, dtype=np.int64).copy()
        self._lengths = np.frombuffer(lengths, dtype=np.uint16).copy()
        self.lexicon_mismatches = mismatches.total()
        self.skipped.report(log, str(annotation), len(self))
        if mismatches:
            log.warning("%s: %d file-name words differ from their lexicon entry (the file name is used): %s",
                        annotation, mismatches.total(), mismatches.summary())
        self._sizes = SizeCache(len(self)) if widths == "header" else None

    def _read_lexicon(self) -> list[bytes] | None:
        path = self.root / "lexicon.txt"
        if not path.is_file():
            log.warning("%s is missing: file-name labels are not checked against the lexicon", path)
            return None
        return [w.strip().lower() for w in path.read_bytes().splitlines()]

    def __len__(self) -> int:
        return len(self._lengths)

    def key(self, index: int) -> str:
        """The image path relative to the root, e.g. ``2697/6/466_MONIKER_49537.jpg``."""
        return self._blob[self._offsets[index]:self._offsets[index + 1]].decode("utf-8", errors="replace")

    def label(self, index: int) -> str:
        return _word(self._blob[self._offsets[index]:self._offsets[index + 1]]).decode("utf-8", errors="replace")

    def size(self, index: int) -> tuple[int, int]:
        if self._sizes is not None:
            return self._sizes.get(index, self._header_size)
        return _PX_PER_CHAR * int(self._lengths[index]) + _MARGIN_PX, 32

    def sizes(self, indices) -> np.ndarray:
        """``size`` of many samples: an ``(n, 2)`` array."""
        if self._sizes is not None:
            return self._sizes.many(indices, self._header_size)
        return np.stack([_PX_PER_CHAR * self._lengths[indices].astype(np.int64) + _MARGIN_PX,
                         np.full(len(indices), 32)], axis=1)

    def _header_size(self, index: int) -> tuple[int, int] | None:
        return image_size(self.root / self.key(index))

    def raw(self, index: int) -> tuple[bytes, str, str]:
        key = self.key(index)
        try:
            data = (self.root / key).read_bytes()
        except OSError as err:
            raise BadSample("missing_file", key, str(err)) from None
        return data, self.label(index), key

    def __getitem__(self, index: int) -> Sample:
        key = self.key(index)
        path = self.root / key
        if not path.is_file():
            raise BadSample("missing_file", key)
        return Sample(decode_image(path, key), self.label(index), key)

    def __repr__(self) -> str:
        return f"Synth90k({self.root}, {len(self)} samples)"
