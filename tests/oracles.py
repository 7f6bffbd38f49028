"""Reference implementations kept as test oracles, not shipped in the package: the N_δ retrieval by a linear scan
(the definition; the paper's BK-tree, which bench/decode_speed.py times too, is
``crnn_lit.transcription.candidates.BKTree``); and the width-bucketing batch sampler as it was first written, one
sample at a time (the batches the vectorised one must reproduce)."""

from __future__ import annotations

import numpy as np
from rapidfuzz.distance import Levenshtein

from crnn_lit.transcription.candidates import CandidateIndex


class LinearScan(CandidateIndex):
    """The reference: the distance to every word, one by one."""

    name = "linear"

    def search(self, query: str, delta: int) -> np.ndarray:
        return np.array([i for i, w in enumerate(self.words) if Levenshtein.distance(query, w) <= delta],
                        dtype=np.int64)


def per_sample_batches(sampler, width, batch_size: int, pool_batches: int, drop_last: bool, rank: int,
                       world: int) -> list[list[int]]:
    """``WidthBatchSampler``'s batches for ``rank`` of ``world`` as the per-sample version built them (with the
    step grouping of issue 33): ``sampler`` an ``EpochSampler``, ``width(i)`` one sample's width (None: no
    bucketing)."""
    indices = sampler.indices()
    bs = batch_size
    if width is not None:
        widths = np.fromiter((width(int(i)) for i in indices), dtype=np.int64, count=len(indices))
        pool = bs * pool_batches * world if sampler.shuffle else len(indices)  # pool_batches steps' worth
        chunks = []
        for start in range(0, len(indices), pool):
            order = np.argsort(widths[start:start + pool], kind="stable")
            chunks.append(indices[start:start + pool][order])
        indices = np.concatenate(chunks) if chunks else indices
    batches = [indices[i:i + bs].tolist() for i in range(0, len(indices), bs)]
    if drop_last and batches and len(batches[-1]) < bs:
        batches.pop()
    if world > 1:  # halve the last of the largest batches until every rank gets as many
        while len(batches) % world and max(map(len, batches), default=0) > 1:
            k = max(reversed(range(len(batches))), key=lambda i: len(batches[i]))
            big = batches[k]
            batches[k:k + 1] = [big[: len(big) // 2], big[len(big) // 2:]]
        if batches:  # fewer samples than ranks: empty batches make up the last step
            batches += [[] for _ in range(-len(batches) % world)]
    if sampler.shuffle:  # steps (runs of world neighbouring batches) shuffled as wholes
        steps = [batches[i:i + world] for i in range(0, len(batches) - len(batches) % world, world)]
        sampler.rng(1).shuffle(steps)
        batches = [b for step in steps for b in step]
    return batches[rank::world]
