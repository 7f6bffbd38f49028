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
    """``WidthBatchSampler``'s batches for ``rank`` of ``world`` as the per-sample version built them: ``sampler``
    an ``EpochSampler``, ``width(i)`` one sample's width (None: no bucketing)."""
    indices = sampler.indices()
    bs = batch_size
    if width is not None:
        widths = np.fromiter((width(int(i)) for i in indices), dtype=np.int64, count=len(indices))
        pool = bs * pool_batches if sampler.shuffle else len(indices)
        chunks = []
        for start in range(0, len(indices), pool):
            order = np.argsort(widths[start:start + pool], kind="stable")
            chunks.append(indices[start:start + pool][order])
        indices = np.concatenate(chunks) if chunks else indices
    batches = [indices[i:i + bs].tolist() for i in range(0, len(indices), bs)]
    if drop_last and batches and len(batches[-1]) < bs:
        batches.pop()
    if sampler.shuffle:
        sampler.rng(1).shuffle(batches)
    if world > 1:
        while len(batches) % world and max(map(len, batches), default=0) > 1:
            k = max(range(len(batches)), key=lambda i: len(batches[i]))
            big = batches[k]
            batches[k:k + 1] = [big[: len(big) // 2], big[len(big) // 2:]]
    usable = len(batches) - len(batches) % world
    return batches[rank:usable:world]
