"""The CTC toolbox, one copy of each piece: the training loss, the many-to-one map B, the best path, and the
frames a label needs, and the forward algorithm: the exact p(l|y) of given labellings
([`ctc_log_likelihoods`][crnn_lit.transcription.ctc.ctc_log_likelihoods], what lexicon decoding scores). Decoders, the training module and the data pipeline
import them from here."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from crnn_lit.charset import BLANK

T = TypeVar("T")


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, case_fold: CaseFold | None = None,
             labels: Sequence[str] = ()) -> torch.Tensor:
    """The paper's objective, −Σ log p(l|y) averaged over the batch (each term divided by its label length, as
    torch does), from raw logits (T, N, C). In fp32 even under mixed precision: log-space sums over alignments
    underflow in 16 bits. Infeasible pairs (a label needing more frames than the image has) give 0, not inf.

    ``case_fold``: the ``labels`` (the batch's strings) with no lower-case letter are scored case-insensitively
    ([`CaseFold`][crnn_lit.transcription.ctc.CaseFold])."""
    log_probs = F.log_softmax(logits.float(), dim=2)
    if case_fold is None:
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="mean",
                          zero_infinity=True)
    return case_fold.loss(log_probs, targets, input_lengths, target_lengths, labels)


class CaseFold:
    """Case-insensitive CTC for labels whose case cannot be trusted, in a charset with both cases.

    Many real labels are upper-cased whatever the print (SROIE's receipts, SVT, part of IIIT5K): trained on as
    given, they teach a cased model to answer in capitals. A label with no lower-case letter is therefore scored
    on folded posteriors, p(A) + p(a) per frame for every letter with both cases, so the loss does not care which
    case the model reads and the model keeps its own judgement; a label holding a lower-case letter is trusted
    and scored as given. (Reading still picks a case: the posteriors themselves are unchanged.)"""

    def __init__(self, chars: str):
        index = {c: i + 1 for i, c in enumerate(chars)}  # class of each character (blank = 0)
        pairs = [(index[c], index[c.lower()]) for c in chars if c.isupper() and c.lower() in index]
        if not pairs:
            raise ValueError("case folding needs a charset with upper- and lower-case letters")
        upper, lower = zip(*pairs)
        self.upper, self.lower = torch.tensor(upper), torch.tensor(lower)
        kept = [k for k in range(len(chars) + 1) if k not in set(lower)]  # folded classes: every non-lower one
        self.kept = torch.tensor(kept)
        self.to_folded = torch.zeros(len(chars) + 1, dtype=torch.long)  # cased class → folded class
        self.to_folded[torch.tensor(kept)] = torch.arange(len(kept))
        self.to_folded[self.lower] = self.to_folded[self.upper]
        self._on: dict[torch.device, tuple[torch.Tensor, ...]] = {}  # the index tensors per device, copied once

    @staticmethod
    def trusts(label: str) -> bool:
        """A label's case is trusted when it holds a lower-case letter (an all-capitals label may be upper-cased)."""
        return any(c.islower() for c in label)

    def _indices(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._on:
            self._on[device] = tuple(t.to(device) for t in (self.upper, self.lower, self.kept, self.to_folded))
        return self._on[device]

    def fold(self, log_probs: torch.Tensor) -> torch.Tensor:
        """(T, N, C) log-probs → (T, N, K): each upper-case class absorbs its lower-case one (log-sum-exp)."""
        upper, lower, kept, _ = self._indices(log_probs.device)
        folded = log_probs.clone()
        folded[..., upper] = torch.logaddexp(log_probs[..., upper], log_probs[..., lower])
        return folded[..., kept]

    def loss(self, log_probs: torch.Tensor, targets: torch.Tensor, input_lengths: torch.Tensor,
             target_lengths: torch.Tensor, labels: Sequence[str]) -> torch.Tensor:
        if len(labels) != log_probs.shape[1]:
            raise ValueError(f"case folding needs the batch's {log_probs.shape[1]} labels, got {len(labels)}")
        # from the strings, on the host: no device read
        trusted = torch.tensor([self.trusts(label) for label in labels]).to(log_probs.device)
        to_folded = self._indices(log_probs.device)[3]
        as_given = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=BLANK, reduction="none",
                              zero_infinity=True)
        folded = F.ctc_loss(self.fold(log_probs), to_folded[targets], input_lengths, target_lengths, blank=BLANK,
                            reduction="none", zero_infinity=True)
        per_sample = torch.where(trusted, as_given, folded)
        return (per_sample / target_lengths.to(per_sample).clamp(min=1)).mean()  # torch's "mean" reduction


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
    keep = (changed & (best != BLANK) & valid).T.cpu()  # (N, T)
    best = best.T.cpu()
    sequences = [best[n][keep[n]].tolist() for n in range(batch)]
    return sequences, path_log_prob


def ctc_log_likelihoods(log_probs: np.ndarray, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """log p(l|y) for K labellings at once by the CTC forward algorithm.

    ``log_probs`` (T, C) of one image's valid frames (blank = ``BLANK``); ``codes`` (K, L) class indices padded
    with anything beyond each word's ``lengths`` (K,). Returns (K,) float64; −inf where p(l|y) = 0 (or below
    float64's range relative to the best path — see [`ctc_log_likelihoods_log_space`][crnn_lit.transcription.ctc.ctc_log_likelihoods_log_space] for the
    log-space rescue).
    """
    codes = np.asarray(codes)
    lengths = np.asarray(lengths, dtype=np.int64)
    k = codes.shape[0]
    steps = log_probs.shape[0]
    if k == 0:
        return np.zeros(0)
    if steps == 0:
        return np.where(lengths == 0, 0.0, -np.inf)
    width = int(lengths.max())
    codes = codes[:, :width]
    lp = np.asarray(log_probs, dtype=np.float64)
    top = lp.max(axis=1, keepdims=True)
    probs = np.exp(lp - top)  # each frame scaled so that its best class has probability 1
    offset = float(top.sum())
    s = 2 * width + 1
    ext = np.zeros((k, s), dtype=np.intp)
    ext[:, 1::2] = codes
    emit = probs[:, ext]  # (T, K, S): probability of each extended label at each frame
    skip = np.zeros((k, s))  # a → b may skip the blank between them (not a → a)
    if width > 1:
        skip[:, 3::2] = codes[:, 1:] != codes[:, :-1]
    # alpha lives in buf[:, 2:]; the two zero columns in front make "from s−1" and "from s−2" plain slices
    buf = np.zeros((k, s + 2))
    alpha, prev1, prev2 = buf[:, 2:], buf[:, 1:-1], buf[:, :-2]
    alpha[:, :2] = emit[0, :, :2]
    tmp = np.empty((k, s))
    mul, add = np.multiply, np.add
    for t in range(1, steps):
        mul(prev2, skip, out=tmp)
        add(tmp, prev1, out=tmp)
        add(tmp, alpha, out=tmp)
        mul(tmp, emit[t], out=alpha)
    rows = np.arange(k)
    final = alpha[rows, 2 * lengths] + np.where(lengths > 0, alpha[rows, np.maximum(2 * lengths - 1, 0)], 0.0)
    with np.errstate(divide="ignore"):
        return np.log(final) + offset


def ctc_log_likelihoods_log_space(log_probs: np.ndarray, codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The same quantity fully in log space (``torch.nn.functional.ctc_loss``): slower, never underflows."""
    k = codes.shape[0]
    steps, classes = log_probs.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    targets = torch.from_numpy(np.concatenate([codes[i, : lengths[i]] for i in range(k)]).astype(np.int64))
    lp = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float64))[:, None, :].expand(steps, k, classes)
    nll = F.ctc_loss(lp, targets, torch.full((k,), steps, dtype=torch.long), torch.from_numpy(lengths),
                     blank=BLANK, reduction="none", zero_infinity=False)
    return -nll.numpy()


def forced_alignment(log_probs: torch.Tensor, lengths: torch.Tensor, targets: Sequence[Sequence[int]]
                     ) -> list[list[tuple[int, int, float]] | None]:
    """Where each character of a given labelling sits: per image, ``(first frame, last frame, log-prob)`` of each
    character of ``targets[n]`` on the most probable path π with B(π) = the target (Viterbi over the CTC state
    graph, vectorized over the batch), the log-prob being the best of its frames' for that character; None when no
    path reads the target in the image's frames. For the greedy reading this is the best path itself.

    ``log_probs`` (T, N, C), ``lengths`` (N,) valid frames per image."""
    steps, batch, _ = log_probs.shape
    longest = max((len(t) for t in targets), default=0)
    states = 2 * longest + 1  # blank, c1, blank, c2, …, blank
    ext = np.full((batch, states), BLANK, dtype=np.int64)
    for n, target in enumerate(targets):
        ext[n, 1:2 * len(target):2] = target
    lp = log_probs.detach().float().cpu().numpy()
    emit = np.take_along_axis(lp, np.broadcast_to(ext, (steps, batch, states)), axis=2)  # (T, N, S)
    skip = np.zeros((batch, states), dtype=bool)  # s-2 → s: into a character unlike the one before it
    skip[:, 2:] = (ext[:, 2:] != BLANK) & (ext[:, 2:] != ext[:, :-2])
    lengths = lengths.detach().cpu().numpy().astype(np.int64)
    delta = np.full((batch, states), -np.inf, dtype=np.float32)
    delta[:, :2] = emit[0, :, :2]
    back = np.zeros((steps, batch, states), dtype=np.int8)
    moves = np.full((3, batch, states), -np.inf, dtype=np.float32)
    for t in range(1, steps):
        moves[0] = delta
        moves[1, :, 1:] = delta[:, :-1]
        moves[2, :, 2:] = np.where(skip[:, 2:], delta[:, :-2], -np.inf)
        live = (t < lengths)[:, None]
        delta = np.where(live, moves.max(0) + emit[t], delta)
        back[t] = np.where(live, moves.argmax(0), 0)
    # the path's state per frame, traced back for the whole batch at once
    sizes = np.array([len(t) for t in targets], dtype=np.int64)
    last = 2 * sizes
    before = np.maximum(last - 1, 0)
    rows = np.arange(batch)
    state = np.where(delta[rows, before] > delta[rows, last], before, last)
    score = delta[rows, state]
    path = np.zeros((steps, batch), dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        live = t < lengths
        path[t] = np.where(live, state, 0)
        state = np.where(live, state - back[t, rows, state], state)
    out: list[list[tuple[int, int, float]] | None] = []
    for n, target in enumerate(targets):
        frames = int(lengths[n])
        if frames < 1 or not np.isfinite(score[n]):
            out.append(None)
            continue
        on = np.flatnonzero(path[:frames, n] % 2)  # frames the path spends on a character
        index = path[on, n] // 2  # which character: non-decreasing along the frames
        char_lp = lp[on, n, ext[n, path[on, n]]]
        first = np.searchsorted(index, np.arange(len(target)))
        ends = np.searchsorted(index, np.arange(len(target)), side="right") - 1
        best = np.maximum.reduceat(char_lp, first) if len(target) else []
        out.append([(int(on[a]), int(on[b]), float(v)) for a, b, v in zip(first, ends, best)])
    return out
