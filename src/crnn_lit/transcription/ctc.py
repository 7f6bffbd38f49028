"""The CTC toolbox, one copy of each piece: the training loss, the many-to-one map B, the best path, and the
frames a label needs. Decoders, the training module and the data pipeline import them from here; the exact
p(l|y) of given labellings is :func:`crnn_lit.transcription.lexicon.ctc_log_likelihoods`."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TypeVar

import torch
import torch.nn.functional as F

T = TypeVar("T")
BLANK = 0


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor) -> torch.Tensor:
    """The paper's objective, −Σ log p(l|y) averaged over the batch (each term divided by its label length, as
    torch does), from raw logits (T, N, C). In fp32 even under mixed precision: log-space sums over alignments
    underflow in 16 bits. Infeasible pairs (a label needing more frames than the image has) give 0, not inf."""
    log_probs = F.log_softmax(logits.float(), dim=2)
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="mean",
                      zero_infinity=True)


def min_frames(label: Sequence) -> int:
    """Frames CTC needs for ``label`` (characters or class indices): one per symbol plus a blank between each
    pair of equal neighbours (``ll`` needs ``l-l``)."""
    return len(label) + sum(a == b for a, b in pairwise(label))


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
