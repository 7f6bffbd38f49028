"""CTC building blocks shared by every decoder: the many-to-one map B and the best path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import torch

T = TypeVar("T")


def collapse(path: Sequence[T], blank: T) -> list[T]:
    """The paper's B: merge runs of equal symbols, then drop blanks (``--hh-e-l-ll-oo-`` → ``hello``).

    Merging happens before blank removal, so a blank between two equal symbols keeps both (``l-l`` → ``ll``).
    """
    out: list[T] = []
    previous = None
    for symbol in path:
        if symbol != previous and symbol != blank:
            out.append(symbol)
        previous = symbol
    return out


def best_path(log_probs: torch.Tensor, lengths: torch.Tensor) -> tuple[list[list[int]], torch.Tensor]:
    """Greedy CTC decoding for a whole batch at once.

    ``log_probs`` (T, N, C) and per-sample frame counts ``lengths`` (N,) → the collapsed class sequences and the
    log-probability of each best path (sum of per-frame maxima over the valid frames). The B map is applied with
    tensor ops — keep a frame if it is not blank and differs from the previous frame — so only the final
    ragged split runs in Python.
    """
    steps, batch = log_probs.shape[:2]
    best_lp, best = log_probs.max(dim=2)  # (T, N)
    valid = torch.arange(steps, device=log_probs.device)[:, None] < lengths.to(log_probs.device)[None, :]
    path_log_prob = (best_lp * valid).sum(dim=0)
    changed = torch.ones_like(best, dtype=torch.bool)
    changed[1:] = best[1:] != best[:-1]
    keep = (changed & (best != 0) & valid).T.cpu()  # (N, T)
    best = best.T.cpu()
    sequences = [best[n][keep[n]].tolist() for n in range(batch)]
    return sequences, path_log_prob
