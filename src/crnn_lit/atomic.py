"""``atomic_write``: the one way crnn_lit writes a file that a killed process must not leave half-written
(checkpoints, weights-only models, the W&B run id)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# read once: os.umask can only be read by setting it, which would race with other threads at write time
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator:
    """Yield a file open for writing in ``path``'s directory; when the block ends, fsync it and rename it over
    ``path`` (then fsync the directory, so the rename itself is durable).

    A process killed inside the block leaves the previous ``path`` intact plus a ``.<name>.*.tmp`` (which
    ``resume=auto`` removes); an exception removes the temporary file. The file gets the mode ``open`` would
    give it (mkstemp's 0600 would make a shipped model unreadable to others). A rename is atomic only within
    one filesystem, hence the temporary file beside the target rather than in the system temp directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
