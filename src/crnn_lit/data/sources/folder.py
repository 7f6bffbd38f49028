"""A folder of word crops with a labels file — the layout of ``../shared/data`` (real sets, benchmarks), DTRB's
``gt.txt`` and mmocr's older ``path label`` files.

The labels file holds one line per image, UTF-8, its path relative to the folder, in one of two forms, decided by
the file's first line: ``path<TAB>label`` (``labels.tsv``, DTRB's ``gt.txt``; the label is everything after the
first tab) or, when that line has no tab, ``path label`` (the label is everything after the first space, spaces
included: a path with a space needs the tab form). Labels are kept verbatim — case folding and charset
filtering happen later, in the label policy. Without a name given, the first of ``LABEL_FILES`` in the folder is
read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.base import SizeCache, SkipLog
from crnn_lit.data.sources.image_io import IMAGE_SUFFIXES, decode_image, image_size
from crnn_lit.paths import ConfigError

log = logging.getLogger(__name__)
LABEL_FILES = ("labels.tsv", "gt.txt", "labels.txt")  # looked for in this order when no labels file is named


# byte-order marks of the encodings a labels file is saved in by mistake (Windows' "Unicode" is UTF-16 LE)
BOMS = ((b"\xff\xfe\x00\x00", "UTF-32LE"), (b"\x00\x00\xfe\xff", "UTF-32BE"), (b"\xff\xfe", "UTF-16LE"),
        (b"\xfe\xff", "UTF-16BE"))


def other_encoding(raw: bytes) -> str | None:
    """The encoding of a labels file that is plainly not UTF-8 — a UTF-16/32 byte-order mark, or NUL bytes (UTF-16
    without a mark) — or None. Text without either is read as UTF-8, line by line (a bad line is skipped)."""
    for bom, name in BOMS:
        if raw.startswith(bom):
            return name
    head = raw[:4096]
    if head.count(b"\x00") > len(head) // 4:
        return "UTF-16LE (no byte-order mark)" if head[1:2] == b"\x00" else "UTF-16BE (no byte-order mark)"
    return None


def unlabelled(root: Path, listed: list[str]) -> list[str]:
    """The image files under ``root`` (recursively) that no line of its labels file names (``listed``): never
    read, so counted and reported (``skipped["unlabelled"]``), by ``inspect`` and when training starts."""
    named = {os.path.normpath(p) for p in listed}
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                path = os.path.normpath(os.path.relpath(os.path.join(folder, name), root))
                if path not in named:
                    found.append(Path(path).as_posix())
    return sorted(found)


def find_labels_file(root: str | Path) -> Path | None:
    """The first of ``LABEL_FILES`` in ``root``, or None."""
    return next((Path(root) / name for name in LABEL_FILES if (Path(root) / name).is_file()), None)


class FolderDataset(Dataset):
    """``dataset[i]`` is ``Sample(image, label, key=relative_path)`` for the i-th usable line of the labels file.

    ``root``: the folder; ``labels_file``: its index, relative to ``root`` (or absolute; None = the first of
    ``LABEL_FILES`` there); ``limit``: keep only the first N usable lines. Lines that are not UTF-8, lack the
    file's separator (``no_tab``, ``no_space``), or name a missing file are skipped when the index is read —
    counted in ``skipped`` (a ``SkipLog``) and reported in one warning. Images that turn out unreadable raise
    ``BadSample`` when accessed; image files under ``root`` that no line names are counted as ``unlabelled`` (unless
    ``limit`` is set); a labels file in UTF-16/32 is a ``ConfigError`` saying how to convert it. ``paths``/``labels`` are the kept entries, in file order; ``size(i)`` reads the
    image header once and caches it.
    """

    def __init__(self, root: str | Path, labels_file: str | None = None, limit: int | None = None):
        self.root = Path(root)
        index = self.root / labels_file if labels_file else find_labels_file(self.root)
        if index is None or not index.is_file():
            raise FileNotFoundError(f"{index or self.root} not found: a folder dataset needs a labels file of "
                                    f"`relative_path<TAB>label` (or `relative_path label`) lines next to its "
                                    f"images{'' if labels_file else ', named ' + ' or '.join(LABEL_FILES)}")
        self.labels_file = index
        self.paths: list[str] = []
        self.labels: list[str] = []
        self.skipped = SkipLog()
        raw = index.read_bytes()
        if raw.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
            raw = raw[3:]
        encoding = other_encoding(raw)
        if encoding:
            raise ConfigError(f"{index} is {encoding}, not UTF-8: convert it, e.g. `iconv -f {encoding.split()[0]} -t "
                              f"UTF-8 {index} > {index.with_name('utf8_' + index.name)}`, and use that file")
        first = next((line for line in raw.splitlines() if line.strip()), b"")
        separator, missing = ("\t", "no_tab") if b"\t" in first or not first else (" ", "no_space")
        named: list[str] = []  # paths of lines skipped for their label
        for lineno, line in enumerate(raw.splitlines(), start=1):
            if limit is not None and len(self.paths) >= limit:
                break
            if not line.strip():
                continue
            where = f"{index.name}:{lineno}"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as err:
                self.skipped.add("not_utf8", f"{where} byte {err.start}")
                named.append(line.decode("utf-8", "replace").partition(separator)[0].strip())  # not "unlabelled"
                continue
            path, found, label = text.partition(separator)
            if not found:
                self.skipped.add(missing, f"{where} {text[:40]!r}")
                continue
            path = path.strip()
            if not path or not (self.root / path).is_file():
                self.skipped.add("missing_file", f"{where} {path!r}")
                continue
            self.paths.append(path)
            self.labels.append(label)
        if limit is None and self.paths:  # a limited read leaves images out on purpose; none kept: said above
            for path in unlabelled(self.root, self.paths + named):
                self.skipped.add("unlabelled", path)
        self.skipped.report(log, str(index), len(self.paths))
        self._sizes = SizeCache(len(self.paths))

    def __len__(self) -> int:
        return len(self.paths)

    def size(self, index: int) -> tuple[int, int]:
        """(width, height) from the image header (read once, then cached)."""
        return self._sizes.get(index, self._header_size)

    def sizes(self, indices) -> np.ndarray:
        """``size`` of many samples: an ``(n, 2)`` array."""
        return self._sizes.many(indices, self._header_size)

    def _header_size(self, index: int) -> tuple[int, int] | None:
        return image_size(self.root / self.paths[index])

    def key(self, index: int) -> str:
        return self.paths[index]

    def label(self, index: int) -> str:
        return self.labels[index]

    def raw(self, index: int) -> tuple[bytes, str, str]:
        """(encoded image bytes, label, key) — what the LMDB converter stores."""
        key = self.paths[index]
        try:
            data = (self.root / key).read_bytes()
        except OSError as err:
            raise BadSample("missing_file", key, str(err)) from None
        return data, self.labels[index], key

    def __getitem__(self, index: int) -> Sample:
        key = self.paths[index]
        return Sample(decode_image(self.root / key, key), self.labels[index], key)

    def __repr__(self) -> str:
        return f"FolderDataset({self.root}, {len(self)} samples)"
