"""Lexicon-free transcription by CTC prefix beam search: l* ≈ argmax_l p(l|y), searched over labellings.

Greedy decoding takes the single best *path*; a labelling l, however, collects the probability of every path π
with B(π) = l. Prefix beam search keeps the ``beam_width`` most probable label prefixes after each frame, each
with two log-probabilities — of the paths so far that map to it and end in a blank (``pb``) or in its last
character (``pnb``) — so that a repeated character is merged (``a a`` → ``a``) unless a blank separates it
(``a - a`` → ``aa``). Paths that reach the same prefix are merged by summing in log space.

Speed: one image is a pure-Python loop over its valid frames (padding frames beyond ``lengths[n]`` are never
read). Per frame only a few classes can start a new character: the most probable non-blank classes whose
cumulative probability reaches ``prune_mass`` (at most ``prune_top_k`` of them), while the blank and the
repeat of each prefix's last character are always scored from the full distribution. With a trained model
most frames need one or two candidates; the top-k selection runs vectorized over the whole batch first.
``prune_mass=1.0, prune_top_k=None`` disables pruning (exact prefix search up to the beam width).
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from crnn_lit.knobs import SIZE, Knob, Knobs, check
from crnn_lit.transcription.base import FUSION_KNOBS, Decoded, Decoder, lm_fusion

if TYPE_CHECKING:
    from crnn_lit.transcription.lm import LMFusion

NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


def frame_candidates(log_probs: np.ndarray, lengths: np.ndarray, mass: float, top_k: int | None
                     ) -> list[list[list[tuple[int, float]]]]:
    """Per image and valid frame, the non-blank ``(class, log_prob)`` pairs allowed to start a new character.

    Classes are ranked by probability, the blank included; a frame keeps the smallest top set whose cumulative
    probability reaches ``mass`` (so a frame that is almost surely blank proposes nothing), capped at ``top_k``
    non-blank classes. Vectorized over (T, N); only the final ragged split is Python.
    """
    _, batch, classes = log_probs.shape
    k = classes if top_k is None else max(1, min(int(top_k) + 1, classes))  # + 1: room for the blank
    if k < classes:
        top = np.argpartition(-log_probs, k - 1, axis=2)[:, :, :k]
        top_lp = np.take_along_axis(log_probs, top, axis=2)
    else:
        top = np.broadcast_to(np.arange(classes), log_probs.shape)
        top_lp = log_probs
    order = np.argsort(-top_lp, axis=2, kind="stable")
    top = np.take_along_axis(top, order, axis=2)
    top_lp = np.take_along_axis(top_lp, order, axis=2)
    if mass >= 1.0:
        keep = np.full(top.shape[:2], k)
    else:  # the first rank at which the cumulative mass is reached
        keep = np.minimum((np.cumsum(np.exp(top_lp), axis=2) < mass).sum(axis=2) + 1, k)
    classes_list, lp_list, keep_list = top.tolist(), top_lp.tolist(), keep.tolist()
    limit = classes if top_k is None else int(top_k)
    out = []
    for n in range(batch):
        frames = []
        for t in range(int(lengths[n])):
            m = keep_list[t][n]
            pairs = [(c, lp) for c, lp in zip(classes_list[t][n][:m], lp_list[t][n][:m]) if c]
            frames.append(pairs[:limit])
        out.append(frames)
    return out


def prefix_beam_search(rows: list[list[float]], candidates: list[list[tuple[int, float]]], beam_width: int,
                       fusion: LMFusion | None = None) -> list[tuple[tuple[int, ...], float]]:
    """The final beam of one image as ``(prefix, log p(prefix|y))``, best first.

    ``rows[t]`` is the full log-probability row of frame t (blank = 0) and ``candidates[t]`` the classes that may
    start a new character at t, most probable first (see ``frame_candidates``). Only valid frames are passed.

    Per frame, every kept prefix first "stays" (blank, or a repeat of its last character that B collapses);
    then extensions are tried, best prefixes and best classes first. An extension creates a new prefix whose
    score is final (no other path reaches it in this frame) unless it lands on a staying prefix, where it is
    merged. A min-heap holds the ``beam_width`` best lower bounds seen so far, so an extension that cannot
    beat them is skipped, and so are all weaker classes and prefixes after it — the kept beam is the same as
    scoring every extension (up to exact ties).

    With ``fusion`` (shallow fusion of a language model, ``LMFusion``) prefixes
    are ranked by log p(prefix|y) plus the sum of ``fusion.bonus`` over its characters, the final beam adds
    ``fusion.end``; the returned scores stay log p(prefix|y). Without it (or with α = β = 0) the search is the
    plain one.
    """
    lae = _logaddexp
    push, pushpop = heapq.heappush, heapq.heappushpop
    bonus = fusion.bonus if fusion is not None else None
    max_bonus = fusion.max_bonus if fusion is not None else 0.0
    # prefix, pb, pnb, total = log p(prefix|y) so far, lm = its fusion score; kept best first by total + lm
    beams: list[tuple[tuple[int, ...], float, float, float, float]] = [((), 0.0, NEG_INF, 0.0, 0.0)]
    for row, cands in zip(rows, candidates):
        lp_blank = row[0]
        stay: dict[tuple[int, ...], list[float]] = {}
        heap: list[float] = []
        for prefix, pb, pnb, total, lm in beams:
            entry = [total + lp_blank, pnb + row[prefix[-1]] if prefix else NEG_INF, lm]
            stay[prefix] = entry
            push(heap, lae(entry[0], entry[1]) + lm)
        floor = heap[0] if len(heap) >= beam_width else NEG_INF
        fresh: list[tuple[float, tuple[int, ...], float]] = []
        best_lp = cands[0][1] if cands else NEG_INF
        for prefix, pb, pnb, total, lm in beams:  # best first
            if total + lm + best_lp + max_bonus <= floor:
                break
            last = prefix[-1] if prefix else -1
            for c, lp in cands:  # most probable first
                if total + lm + lp + max_bonus <= floor:
                    break
                score = (pb if c == last else total) + lp
                new = prefix + (c,)
                entry = stay.get(new)
                if entry is not None:  # reaches a staying prefix: merge
                    entry[1] = lae(entry[1], score)
                    continue
                new_lm = lm + bonus(prefix, c) if bonus is not None else lm
                fused = score + new_lm
                if fused <= floor:
                    continue
                fresh.append((score, new, new_lm))
                if len(heap) >= beam_width:
                    pushpop(heap, fused)
                    floor = heap[0]
                else:
                    push(heap, fused)
                    if len(heap) >= beam_width:
                        floor = heap[0]
        scored = []
        for p, (pb, pnb, lm) in stay.items():
            total = lae(pb, pnb)
            scored.append((total + lm, p, pb, pnb, total, lm))
        scored.extend((sc + lm, p, NEG_INF, sc, sc, lm) for sc, p, lm in fresh)
        scored.sort(key=_first, reverse=True)
        beams = [(p, pb, pnb, total, lm) for _, p, pb, pnb, total, lm in scored[:beam_width]]
    end = fusion.end if fusion is not None else None
    final = [(total + lm + (end(p) if end is not None else 0.0), p, total) for p, _, _, total, lm in beams]
    final.sort(key=lambda x: (-x[0], x[1]))
    return [(p, total) for _, p, total in final]


def _first(item):
    return item[0]


class BeamDecoder(Decoder):
    """CTC prefix beam search; confidence = p(prefix | y) summed over the alignments kept by the search. The
    prediction's ``alternatives`` are the final beam (at most ``beam_width`` labellings, the returned one first),
    ranked as the search ranks them (with the LM's fusion, when there is one), each with its p(l|y).

    Args:
        beam_width: prefixes kept after every frame (paper-style decoders use ~10).
        prune_mass: per frame, new characters are tried only from the most probable non-blank classes whose
            cumulative probability reaches this mass (1.0 = all classes).
        prune_top_k: at most this many new-character classes per frame (None = no cap).
        lm: a character n-gram language model file (``crnn_lit.transcription.lm``) fused into the search
            with weight ``lm_weight`` (α) and a per-character bonus ``length_bonus`` (β):
            log p(l|y) + α·log P_LM(l) + β·|l| (``decoder=beam_lm``). None = no language model.

    With pruning and a finite beam the confidence is a lower bound of the exact p(l|y) (alignments through
    dropped prefixes are lost); with ``prune_mass=1`` and a beam wide enough to hold every prefix it is exact.
    """

    KNOBS: ClassVar[Knobs] = {"beam_width": SIZE, "prune_mass": Knob(float, 0, 1, above=True),
                              "prune_top_k": Knob(int, 1, optional=True), **FUSION_KNOBS}

    def __init__(self, charset, beam_width: int = 10, prune_mass: float = 0.9999, prune_top_k: int | None = 16,
                 lm: str | None = None, lm_weight: float = 0.0, length_bonus: float = 0.0,
                 allowed_chars: str | None = None, blocked_chars: str | None = None):
        super().__init__(charset, allowed_chars, blocked_chars)
        check(self.KNOBS, beam_width=beam_width, prune_mass=prune_mass, prune_top_k=prune_top_k)
        self.beam_width = int(beam_width)
        self.prune_mass = float(prune_mass)
        self.prune_top_k = None if prune_top_k is None else int(prune_top_k)
        self.fusion = lm_fusion(lm, charset, lm_weight, length_bonus)

    def beams(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[tuple[tuple[int, ...], float]]]:
        """The final beam of every image (class sequences with log p(l|y)), best (fused) first."""
        lp = log_probs.detach().float().cpu().numpy()
        lens = np.minimum(lengths.detach().cpu().numpy().astype(np.int64), lp.shape[0])
        cands = frame_candidates(lp, lens, self.prune_mass, self.prune_top_k)
        out = []
        for n in range(lp.shape[1]):
            rows = lp[: lens[n], n].tolist()
            out.append(prefix_beam_search(rows, cands[n], self.beam_width, self.fusion))
        return out

    def _decode(self, log_probs: torch.Tensor, lengths: torch.Tensor, lexicons=None) -> list[Decoded]:
        results = []
        for beam in self.beams(log_probs, lengths):
            found = tuple((self.charset.decode(prefix), math.exp(logp)) for prefix, logp in beam)
            results.append(Decoded(*found[0], alternatives=found))
        return results
