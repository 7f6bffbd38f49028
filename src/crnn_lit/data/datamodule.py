"""TextDataModule: height-normalized, variable-width batches from any sources (renderer, Synth90k, …)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from functools import partial

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from crnn_lit.charset import Charset
from crnn_lit.data.batching import Collate, EpochSampler, WidthBatchSampler
from crnn_lit.data.dataset import PreparedDataset, seed32
from crnn_lit.preprocess import Preprocess
from crnn_lit.runtime import ResumableLoader

log = logging.getLogger(__name__)

# one epoch of a larger index space than this needs data.samples_per_epoch (the renderer has 10^9 indices)
MAX_FULL_PASS = 50_000_000


def seed_worker(worker_id: int, rank: int = 0) -> None:
    """DataLoader ``worker_init_fn``: derive the worker's python and numpy RNGs from the torch worker seed
    (DataLoader generator seed + worker id) and the rank, so that no two workers or ranks share one.
    (Augmentation does not use them: ``PreparedDataset`` seeds it per batch.)"""
    info = get_worker_info()
    seed = seed32(info.seed, rank, worker_id)
    random.seed(seed)
    np.random.seed(seed)


class TextDataModule(L.LightningDataModule):
    """Training and validation loaders for CTC recognition.

    ``train``/``val`` are map-style sources of ``Sample`` offering ``size(i) -> (w, h)``. ``charset`` and
    ``output_length`` come from the model (the train entry point passes them), so the label policy and the
    too-long filter always match the network being trained. ``samples_per_epoch`` draws that many random
    training indices each epoch (required for the renderer's virtual index space; ``None`` = one pass).
    ``root`` is where file-based sources read from and ``mix`` the mixing settings (sampling ratios, hold-out
    share): source configs interpolate both; the module only keeps them for messages.

    Sources with ``epoch_indices(rng, n)`` (``MixedSource``) choose each epoch's training indices themselves
    (per-source ratios). ``augment`` (an albumentations pipeline, training only) is seeded per batch from ``seed`` and
    the batch's indices (``PreparedDataset.__getitems__``), so a fixed seed reproduces the run with any number of
    workers, and a resumed run augments its batches exactly as an uninterrupted one.
    """

    def __init__(self, train, val, charset: Charset, output_length: Callable[[int], int], *, preprocess: Preprocess,
                 batch_size: int, eval_batch_size: int, num_workers: int, samples_per_epoch: int | None,
                 seed: int, augment: Callable | None = None, pool_batches: int = 50, root: str | None = None,
                 mix: dict | None = None):
        super().__init__()
        self.train_set = PreparedDataset(train, charset, preprocess, output_length, augment, seed=seed)
        self.val_set = PreparedDataset(val, charset, preprocess, output_length, None)
        self.collate = Collate(output_length)
        self.width_policy = preprocess.width_policy
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.pool_batches = pool_batches
        self.root = root
        self.mix = dict(mix) if mix else {}
        if samples_per_epoch is None and len(self.train_set) > MAX_FULL_PASS:
            raise ValueError(f"the training source has {len(self.train_set):,} samples: set data.samples_per_epoch "
                             "(one pass over a virtual or huge source is not an epoch)")
        log.info("data: train %r (%d), val %r (%d)", train, len(self.train_set), val, len(self.val_set))

    def _rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_rank) if trainer is not None else 0

    def _loader(self, dataset: PreparedDataset, sampler: WidthBatchSampler) -> DataLoader:
        rank = self._rank()
        if self.num_workers > 0:
            # One OpenCV thread per process: the workers are the parallelism (no oversubscribed cores), and no
            # OpenCV thread pool is alive here when they fork (a worker touching an inherited pool's state, e.g.
            # cv2.setNumThreads in the child, deadlocks).
            cv2.setNumThreads(1)
        return DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.collate, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, pin_memory=False,
            worker_init_fn=partial(seed_worker, rank=rank) if self.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(self.seed),  # worker seeds independent of other RNG use
        )

    def train_dataloader(self) -> ResumableLoader:
        draw = getattr(self.train_set.source, "epoch_indices", None)
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.seed, num_samples=self.samples_per_epoch,
                               draw=draw)
        width = self.train_set.width if self.width_policy == "bucketed" else None
        # drop_last=False: every sample of the epoch is used once (the batch sampler balances ranks by splitting)
        batches = WidthBatchSampler(sampler, self.batch_size, width, self.pool_batches, drop_last=False)
        return ResumableLoader(self._loader(self.train_set, batches))  # a resume continues inside the epoch

    def val_dataloader(self) -> DataLoader:
        width = self.val_set.width if self.width_policy != "fixed" else None
        batches = WidthBatchSampler(EpochSampler(len(self.val_set), shuffle=False), self.eval_batch_size, width)
        return self._loader(self.val_set, batches)
