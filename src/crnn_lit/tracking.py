"""Experiment-tracking helpers: a W&B logger that never blocks, and closing it after every job."""

from __future__ import annotations

import netrc
import os
from pathlib import Path


def wandb_has_key() -> bool:
    """True when an API key is configured (environment or the netrc entry `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_logger(mode: str = "auto", save_dir: str = ".", **kwargs):
    """A Lightning ``WandbLogger`` whose mode is resolved up front so wandb never asks for a key.

    ``mode``: ``auto`` (online with a key, else offline), ``online``, ``offline`` or ``disabled``. An explicit
    ``WANDB_MODE`` in the environment wins over ``auto``. Offline runs are written under ``save_dir/wandb``.
    """
    from lightning.pytorch.loggers import WandbLogger

    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_key() else "offline")
    if mode not in ("online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(mode=mode, save_dir=save_dir, **kwargs)


def finish_wandb() -> None:
    """Close the active W&B run, if any, so the next job of a multirun starts its own run."""
    import sys

    wandb = sys.modules.get("wandb")  # only if this process imported it: never import wandb just to close it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
