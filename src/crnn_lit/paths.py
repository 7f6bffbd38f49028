"""Where crnn_lit's files are — conf/, the shipped assets (pretrained models, LMs, word lists), the shared data
folder — and the errors naming a missing one. No Hydra here: the Python API (``Recognizer``, the decoders) finds
its assets by name through this module alone; ``crnn_lit.config`` builds the Hydra plumbing on top of it."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

# src/crnn_lit/paths.py → the checkout root (where conf/ and data/ live in the repository)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A built wheel carries conf/ and the runtime assets of data/ inside the package, as crnn_lit/conf and
# crnn_lit/assets (pyproject's package-dir mapping); a checkout run (PYTHONPATH=src, editable install) has neither
# and reads the repository's own folders, so there is one copy of each file in git.
_PACKAGE = Path(str(files("crnn_lit")))  # an installed wheel is unzipped: a real folder Hydra can search
INSTALLED = (_PACKAGE / "conf").is_dir()
CONFIG_DIR = _PACKAGE / "conf" if INSTALLED else PROJECT_ROOT / "conf"
ASSETS_DIR = _PACKAGE / "assets" if INSTALLED else PROJECT_ROOT / "data"


def root_dir() -> Path:
    """Where ``outputs/`` and repository-relative paths (``../shared/data``) start: the checkout when run from one,
    else the working directory (an installed package's folder is no place for run outputs)."""
    return Path.cwd() if INSTALLED else PROJECT_ROOT


SHARED_DATA_ENV = "CRNN_LIT_DATA"
# what paths under an unknown shared data folder read as, so every message naming one says what to set
SHARED_DATA_UNSET = f"<{SHARED_DATA_ENV} not set>"


def shared_data_dir() -> str:
    """The shared real-data folder (``benchmarks/``, ``lexicons/``, ``real_train/``): ``$CRNN_LIT_DATA``; without it
    a checkout uses the folder beside it, ``<checkout>/../shared/data``, and an installed package has none — it is
    never guessed from the working folder, and paths under it read ``<CRNN_LIT_DATA not set>/…``."""
    if os.environ.get(SHARED_DATA_ENV):
        return os.environ[SHARED_DATA_ENV]
    return SHARED_DATA_UNSET if INSTALLED else str(PROJECT_ROOT.parent / "shared" / "data")


class ConfigError(ValueError):
    """A configuration that cannot run, with what to set instead."""


class MissingFile(ConfigError, FileNotFoundError):
    """A file the configuration names is not there (a ``ConfigError``: one line from the entry points)."""


def find_asset(path: str | Path, folder: str, what: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` when it is a file; else the shipped asset it names — a bare name (``english_char6``, suffixes
    optional) or the checkout's spelling (``data/lm/english_char6.json.gz``) — from any working folder, installed
    or not; else ``MissingFile`` naming what was looked for and what is shipped."""
    path = Path(path)
    if path.is_file():
        return path
    shipped = ASSETS_DIR / folder
    parts = path.parts
    if not path.is_absolute() and (len(parts) == 1 or parts[:2] == ("data", folder)):
        for name in (path.name, *(path.name + s for s in suffixes)):
            if (shipped / name).is_file():
                return shipped / name
    names = sorted(p.name for p in shipped.glob("*") if p.is_file() and p.suffix not in (".md", ".py", "")) \
        if shipped.is_dir() else []
    raise MissingFile(f"{what} not found: {path} (not a file, nor a shipped one; shipped in {shipped}: "
                      f"{', '.join(names) or 'none'})")


# a shipped model's files: its ONNX export (with its sidecar) is what reads when there is one — onnxruntime reads
# PP-OCRv6 small 1.9× faster than torch here (docs/results.md) —, the .pt is the weights (fine-tuning, export)
PRETRAINED_SUFFIXES = {"reading": (".onnx", ".pt"), "weights": (".pt",)}


def resolve_ckpt(cfg, use: str = "reading") -> str:
    """The checkpoint an evaluate/predict/export config names: ``ckpt=pretrained`` (their default) is the shipped
    model ``<paths.pretrained_dir>/<pretrained>`` (for ``reading``: its ``.onnx`` if shipped, else its ``.pt``;
    for ``weights``: the ``.pt``); any other value is a path, returned as given."""
    if cfg.ckpt == "pretrained":
        folder = Path(cfg.paths.pretrained_dir)
        files = [folder / f"{cfg.pretrained}{suffix}" for suffix in PRETRAINED_SUFFIXES[use]]
        return str(next((f for f in files if f.is_file()), files[-1]))
    return str(cfg.ckpt)
