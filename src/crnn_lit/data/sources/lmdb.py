"""LMDB archives in the layout of deep-text-recognition-benchmark (DTRB) and parseq, read and written.

Keys (1-based ``%09d`` indices): ``num-samples`` (decimal count), ``image-000000001`` (the encoded image file,
as is), ``label-000000001`` (UTF-8 label). Archives published by those projects load unchanged; a folder tree of
them (every directory holding a ``data.mdb``, e.g. DTRB's ``training/MJ/MJ_train`` + ``training/ST``) is read
as one concatenated dataset.

Our writer adds two optional keys that other readers ignore: ``size-000000001`` (``"<width> <height>"``, so the
width-bucketing sampler never has to touch the image) and ``crnn-lit-meta`` (JSON progress of a conversion,
which makes ``python -m crnn_lit.data convert`` resumable).

Image sizes (the width-bucketing sampler needs every sample's): read for a whole archive in one pass on first use
(the ``size-`` records, else each image's header) and stored in a ``SizeIndex`` beside the archive, or in the
cache folder when the archive is read-only, so later runs read one file.

Fork safety: environments are opened lazily, read-only and lock-free, once per process (a DataLoader worker
that inherits an environment opened by its parent reopens its own); an open environment is never pickled.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import lmdb
import numpy as np
from torch.utils.data import Dataset
from typing_extensions import Self

from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.base import SizeIndex, SkipLog, cache_dir
from crnn_lit.data.sources.image_io import decode_image, size_from_bytes

log = logging.getLogger(__name__)

META_KEY = b"crnn-lit-meta"


def find_lmdb_dirs(root: str | Path) -> list[Path]:
    """``root`` itself if it holds a ``data.mdb``, else every directory below it that does (sorted)."""
    root = Path(root)
    if (root / "data.mdb").is_file():
        return [root]
    return sorted(p.parent for p in root.rglob("data.mdb"))


# One read-only environment per archive and process: py-lmdb refuses to open the same archive twice in a process
# (train and val sources, or two splits of one archive, share it). Keyed by pid so a forked child never uses
# its parent's handle.
_ENVS: dict[tuple[int, str], lmdb.Environment] = {}


def _drop_inherited() -> None:
    """In a forked child, close the handles inherited from the parent without using them: py-lmdb remembers
    them as open and would refuse to open the same archive again. Safe for our environments (read-only,
    lock-free: closing only unmaps this process's copy and closes its file descriptors)."""
    pid = os.getpid()
    for key in [k for k in _ENVS if k[0] != pid]:
        _ENVS.pop(key).close()


def open_env(path: str | Path) -> lmdb.Environment:
    """This process's read-only, lock-free environment of ``path`` (no readahead: access is random).

    ``path`` should be resolved already (it is the cache key; sources resolve their paths once)."""
    key = (os.getpid(), str(path))
    env = _ENVS.get(key)
    if env is None:
        _drop_inherited()
        env = _ENVS[key] = lmdb.open(key[1], readonly=True, lock=False, readahead=False, meminit=False,
                                     max_readers=1)
    return env


def close_env(path: Path) -> None:
    """Close this process's reader of ``path`` (before writing to it)."""
    env = _ENVS.pop((os.getpid(), str(Path(path).resolve())), None)
    if env is not None:
        env.close()


def _index_key(kind: str, index: int) -> bytes:
    return b"%s-%09d" % (kind.encode(), index)


class LmdbDataset(Dataset):
    """One archive or a tree of archives, concatenated in sorted path order.

    ``limit`` keeps the first N samples overall. Sample keys read ``<archive>/image-000000042`` (``<archive>``
    relative to ``root``; just ``image-000000042`` for a single archive). Missing records raise
    ``BadSample("missing_key")``, non-UTF-8 labels ``BadSample("not_utf8")``; archives without a usable
    ``num-samples`` are skipped with a warning. ``size_cache``: where size indexes of read-only archives go
    (None: ``base.cache_dir``'s default, ``$CRNN_LIT_CACHE`` or ``~/.cache/crnn_lit``).
    """

    # leads the identity a size index is checked against: a new value invalidates every stored index
    INDEX_FORMAT = "lmdb-sizes-1"
    BUILD_READAHEAD = True  # the index build's sequential pass reads ahead (bench/scale.py compares it off)

    def __init__(self, root: str | Path, limit: int | None = None, size_cache: str | Path | None = None):
        self.root = Path(root)
        self.size_cache = size_cache
        dirs = find_lmdb_dirs(self.root)
        if not dirs:
            raise FileNotFoundError(f"no LMDB archive (a folder holding data.mdb) at or below {self.root}")
        self.skipped = SkipLog()
        self.dirs: list[Path] = []
        self.names: list[str] = []
        counts = []
        for d in dirs:
            d = d.resolve()
            try:
                with open_env(d).begin() as txn:
                    raw = txn.get(b"num-samples")
            except lmdb.Error as err:
                self.skipped.add("unopenable", f"{d}: {err}")
                continue
            try:
                n = int(raw)
            except (TypeError, ValueError):
                self.skipped.add("no_num_samples", f"{d} (num-samples={raw!r})")
                continue
            self.dirs.append(d)
            rel = d.relative_to(self.root.resolve()).as_posix()
            self.names.append("" if rel == "." else rel + "/")
            counts.append(max(n, 0))
        self.skipped.report(log, str(self.root), int(sum(counts)))
        if not self.dirs:
            raise FileNotFoundError(f"no readable LMDB archive below {self.root}: {self.skipped.summary()}")
        self._totals = counts  # records per archive (``_ends`` may stop short of them: ``limit``)
        self._ends = np.cumsum(counts, dtype=np.int64)
        if limit is not None:
            self._ends = np.minimum(self._ends, limit)
        self._sizes: np.ndarray | None = None  # (len, 2), read on first use

    def _env(self, archive: int) -> lmdb.Environment:
        # looked up per access, never stored on the dataset: pickling it (spawned workers) carries no handle,
        # and a forked worker gets its own environment on first access
        return open_env(self.dirs[archive])

    def _locate(self, index: int) -> tuple[int, int]:
        """(archive, 1-based record number) of global index ``index``."""
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {self!r}")
        archive = int(np.searchsorted(self._ends, index, side="right"))
        start = int(self._ends[archive - 1]) if archive else 0
        return archive, index - start + 1

    def _get(self, archive: int, key: bytes) -> bytes | None:
        with self._env(archive).begin() as txn:
            return txn.get(key)

    # --- source protocol ----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self._ends[-1]) if len(self._ends) else 0

    def key(self, index: int) -> str:
        archive, j = self._locate(index)
        return f"{self.names[archive]}image-{j:09d}"

    def label(self, index: int) -> str:
        archive, j = self._locate(index)
        raw = self._get(archive, _index_key("label", j))
        if raw is None:
            raise BadSample("missing_key", self.key(index), f"label-{j:09d} not in {self.dirs[archive]}")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadSample("not_utf8", self.key(index), f"label bytes {raw[:20]!r}: {err.reason}") from None

    def raw(self, index: int) -> tuple[bytes, str, str]:
        archive, j = self._locate(index)
        key = self.key(index)
        data = self._get(archive, _index_key("image", j))
        if data is None:
            raise BadSample("missing_key", key, f"image-{j:09d} not in {self.dirs[archive]}")
        return data, self.label(index), key

    def size(self, index: int) -> tuple[int, int]:
        """(width, height): our writer's ``size-%09d`` record if present, else parsed from the image header."""
        self._locate(index)  # the range check
        w, h = self.sizes(np.array([index]))[0]
        return int(w), int(h)

    def sizes(self, indices: np.ndarray) -> np.ndarray:
        """``(len(indices), 2)`` (width, height) of the samples ``indices``, from the table of the whole dataset
        (read on first use: each archive's size index, or one pass over the archive that writes it)."""
        if self._sizes is None:
            parts = [self._archive_sizes(a) for a in range(len(self.dirs))]
            self._sizes = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return self._sizes[indices]

    def _archive_sizes(self, archive: int) -> np.ndarray:
        """Sizes of the records of ``archive`` this dataset uses: from its index if current, else read (and the
        index written, unless ``limit`` leaves part of the archive unread: a quick look must stay quick)."""
        total = self._totals[archive]
        used = int(self._ends[archive] - (self._ends[archive - 1] if archive else 0))
        stat = (self.dirs[archive] / "data.mdb").stat()
        identity = (f"{self.INDEX_FORMAT} {total} {stat.st_size} {stat.st_mtime_ns} "
                    f"{self._env(archive).info()['last_txnid']}")
        index = SizeIndex(self.dirs[archive], identity, cache_dir(self.size_cache))
        sizes = index.load()
        if sizes is not None and len(sizes) == total:
            return sizes[:used]
        sizes = self._read_sizes(archive, used)
        if used == total:
            index.save(sizes)
        return sizes

    def index_sizes(self) -> None:
        """Read (or build and store) the size index of every archive now: what the data module runs on one rank
        while the others wait (``TextDataModule.setup``)."""
        self.sizes(np.zeros(0, dtype=np.int64))

    def _read_sizes(self, archive: int, count: int, fallback: tuple[int, int] = (100, 32)) -> np.ndarray:
        """Sizes of records 1..``count`` in one pass over the archive's keys in order (far cheaper than a lookup
        per record): ``size-`` records where present, else the image headers. A record without a readable size
        gets ``fallback`` (a plausible size): the sample itself is rejected when it is decoded.

        The pass reads the file front to back, so it opens the archive with the OS's readahead (``open_env`` turns
        it off: training reads at random): on an archive out of the page cache, a million records took 46–50 s
        without it and 15 s with it (issue 33). py-lmdb opens an archive once per process, so this process's
        reader is closed for the pass and reopened on the next access."""
        path = self.dirs[archive]
        log.info("building the size index of %s (%d records): one sequential pass, once per archive", path, count)
        sizes = np.full((count, 2), -1, dtype=np.int32)
        close_env(path)
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=self.BUILD_READAHEAD, meminit=False,
                        max_readers=1)
        try:
            self._scan_sizes(env, sizes, count)
        finally:
            env.close()
        sizes[sizes[:, 0] < 0] = fallback
        return sizes

    @staticmethod
    def _scan_sizes(env: lmdb.Environment, sizes: np.ndarray, count: int) -> None:
        with env.begin(buffers=True) as txn:
            cursor = txn.cursor()
            for kind, parse in ((b"size-", _parse_size), (b"image-", size_from_bytes)):
                if not (sizes[:, 0] < 0).any() or not cursor.set_range(kind):
                    continue
                for key, value in cursor:
                    key = bytes(key)
                    if not key.startswith(kind):
                        break
                    j = int(key[len(kind):]) if key[len(kind):].isdigit() else 0
                    if j > count:  # keys run in record order (zero-padded): the rest lies beyond ``limit``
                        break
                    size = parse(value) if j and sizes[j - 1, 0] < 0 else None
                    if size and 0 < min(size) and max(size) < 1 << 31:  # else: not a size an image can have
                        sizes[j - 1] = size

    def __getitem__(self, index: int) -> Sample:
        data, label, key = self.raw(index)
        return Sample(decode_image(data, key), label, key)

    def __repr__(self) -> str:
        return f"LmdbDataset({self.root}, {len(self.dirs)} archive(s), {len(self)} samples)"


def _parse_size(record) -> tuple[int, int] | None:
    """Our ``size-`` record, ``b"<width> <height>"``, or None if it is not one."""
    try:
        w, h = bytes(record).split()
        return int(w), int(h)
    except ValueError:
        return None


class LmdbWriter:
    """Appends samples to a DTRB-layout archive, committing every ``commit_every`` samples.

    Every commit writes the records, ``num-samples`` and the caller's progress metadata in one transaction, so
    an interrupted run leaves a consistent archive that a new writer continues (``count``/``meta`` are read
    back on open). ``map_size`` only reserves address space; the file grows with the data.
    """

    def __init__(self, path: str | Path, map_size: int = 1 << 40, commit_every: int = 1000):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        close_env(self.path)
        self.env = lmdb.open(str(self.path), map_size=map_size, meminit=False)
        self.commit_every = commit_every
        with self.env.begin() as txn:
            self.count = int(txn.get(b"num-samples") or 0)
            meta = txn.get(META_KEY)
        self.meta: dict = json.loads(meta) if meta else {}
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_samples = 0

    def add(self, image: bytes, label: str, size: tuple[int, int] | None = None) -> None:
        self.count += 1
        self._pending.append((_index_key("image", self.count), bytes(image)))
        self._pending.append((_index_key("label", self.count), label.encode("utf-8")))
        if size is not None:
            self._pending.append((_index_key("size", self.count), b"%d %d" % tuple(size)))
        self._pending_samples += 1

    def pending(self) -> int:
        """Samples added since the last commit."""
        return self._pending_samples

    def commit(self, meta: dict | None = None) -> None:
        if meta is not None:
            self.meta = meta
        with self.env.begin(write=True) as txn:
            for key, value in self._pending:
                txn.put(key, value)
            txn.put(b"num-samples", str(self.count).encode())
            txn.put(META_KEY, json.dumps(self.meta, sort_keys=True).encode())
        self._pending.clear()
        self._pending_samples = 0

    def close(self) -> None:
        if self._pending_samples:
            self.commit()
        self.env.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        # on an exception, drop the uncommitted tail: the last commit's metadata still describes the archive
        if exc[0] is not None:
            self._pending.clear()
            self._pending_samples = 0
        self.close()
