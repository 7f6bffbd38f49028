"""Data sources: map-style datasets of ``Sample`` (see ``base`` for the protocol).

* ``renderer.SyntheticWords`` — words rendered on the fly (virtual index space);
* ``synth90k.Synth90k`` — the MJSynth archive as distributed (annotation files + lexicon);
* ``lmdb.LmdbDataset`` — DTRB/parseq LMDB archives (one, or a tree of them); ``lmdb.LmdbWriter`` writes them;
* ``folder.FolderDataset`` — images + a labels file (``labels.tsv``, DTRB's ``gt.txt``, ``path label`` lines);
* ``mixed.MixedSource`` / ``mixed.HoldoutSplit`` — several sources with sampling ratios; a hashed hold-out split.
"""

from __future__ import annotations

from pathlib import Path


def detect_format(path: str | Path, split: str = "train") -> str:
    """``lmdb`` | ``folder`` | ``synth90k`` for a path, from what it contains; ValueError if none fits. A file
    (``.tsv``/``.txt``) is the labels file of a folder dataset."""
    from crnn_lit.data.sources.folder import LABEL_FILES, find_labels_file

    path = Path(path)
    if path.is_file() and path.suffix in (".tsv", ".txt"):
        return "folder"
    if not path.is_dir():
        raise ValueError(f"{path} does not exist or is not a folder (or a .tsv/.txt labels file)")
    if find_labels_file(path) is not None:
        return "folder"
    if (path / f"annotation_{split}.txt").is_file():
        return "synth90k"
    if (path / "data.mdb").is_file() or next(path.rglob("data.mdb"), None) is not None:
        return "lmdb"
    raise ValueError(f"{path}: not a known dataset layout (expected {', '.join(LABEL_FILES)}, "
                     f"annotation_{split}.txt as in Synth90k, or LMDB folders holding data.mdb; a labels file of "
                     "another name: give its path)")


def open_source(path: str | Path, fmt: str = "auto", split: str = "train", limit: int | None = None):
    """Open ``path`` as a source of the given format (``auto`` = detect it)."""
    path = Path(path)
    fmt = detect_format(path, split) if fmt == "auto" else fmt
    if fmt == "folder":
        from crnn_lit.data.sources.folder import FolderDataset

        if path.is_file():
            return FolderDataset(path.parent, path.name, limit=limit)
        return FolderDataset(path, limit=limit)
    if fmt == "synth90k":
        from crnn_lit.data.sources.synth90k import Synth90k

        return Synth90k(str(path), split=split, limit=limit)
    if fmt == "lmdb":
        from crnn_lit.data.sources.lmdb import LmdbDataset

        return LmdbDataset(path, limit=limit)
    raise ValueError(f"unknown format {fmt!r}: choose folder, synth90k, lmdb or auto")
