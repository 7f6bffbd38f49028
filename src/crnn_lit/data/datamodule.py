"""TextDataModule: height-normalized, variable-width batches from any sources (renderer, Synth90k, …)."""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Callable
from functools import partial
from typing import ClassVar

import cv2
import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.environments import SLURMEnvironment
from torch.utils.data import DataLoader, get_worker_info

from crnn_lit.charset import Charset
from crnn_lit.data.batching import Collate, EpochSampler, WidthBatchSampler
from crnn_lit.data.dataset import PreparedDataset, seed32
from crnn_lit.data.loader import ResumableLoader, shielded_worker
from crnn_lit.data.sources.base import index_sizes, index_skips
from crnn_lit.knobs import SIZE, Knob, Knobs, check
from crnn_lit.paths import ConfigError
from crnn_lit.preprocess import Preprocess

log = logging.getLogger(__name__)

# data.pad_multiple auto on a GPU: training batches padded to a multiple of 8 px, so an epoch meets a bounded set
# of input shapes (≤ 49 widths from 16 to 400 px) that cudnn.benchmark (conf/trainer/gpu.yaml, ddp.yaml) tunes once
# each; on real_train widths 181 shapes per epoch become 31, for 4 % more padded pixels (bench/scale.py)
GPU_PAD_MULTIPLE = 8

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


# ``num_workers: auto`` off SLURM: at most this many per training process. More than one GPU's loading needs at
# 10k images/s (bench/scale.py: 3 workers for LMDB, 7 with augment=strong, 9 for the renderer) and what a SLURM task
# gets by default (11); a 224-CPU machine would otherwise start 223 workers for one process.
MAX_AUTO_WORKERS = 12


def auto_num_workers(trainer: L.Trainer | None = None) -> int:
    """``num_workers: auto``: the DataLoader workers of one training process, from the CPUs it has.

    workers = CPUs ÷ training processes sharing them − 1, at least 0 (the training process keeps one CPU: it
    receives the batches, steps the optimizer and launches the GPU's kernels).

    * A SLURM task (``srun`` started one training process per task: Lightning's ``SLURMEnvironment``) has its own
      ``SLURM_CPUS_PER_TASK`` CPUs: ``cpus_per_task: 12`` → 11 workers per GPU (all of them: they were reserved).
    * Otherwise the processes Lightning starts on this node (``trainer.num_devices``) share the CPUs this process may
      run on (``os.sched_getaffinity``: taskset/cgroup limits, not the machine's count), at most
      ``MAX_AUTO_WORKERS``: 96 CPUs and 8 GPUs → 11 each; 224 CPUs and one process → 12; 2 CPUs and one process → 1
      (this machine's CPU training, as before); 2 CPUs and ``trainer=ddp_cpu`` → 0.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    processes = trainer.num_devices if trainer is not None else 1
    environment = getattr(trainer.strategy, "cluster_environment", None) if trainer is not None else None
    if isinstance(environment, SLURMEnvironment) and os.environ.get("SLURM_CPUS_PER_TASK"):
        return max(min(cpus, int(os.environ["SLURM_CPUS_PER_TASK"])) - 1, 0)
    return min(max(cpus // max(processes, 1) - 1, 0), MAX_AUTO_WORKERS)


def eval_workers(train_workers: int) -> int:
    """Validation loader workers: a quarter of the training ones, at least one if training has any. Validation
    sets are small and read without augmentation, and its workers stay alive beside the training ones
    (``persistent_workers``), each holding memory."""
    return min(train_workers, max(1, train_workers // 4))


class TextDataModule(L.LightningDataModule):
    """Training and validation loaders for CTC recognition.

    ``train``/``val`` are map-style sources of ``Sample`` offering ``size(i) -> (w, h)``. ``charset`` and
    ``output_length`` come from the model (the train entry point passes them), so the label policy and the
    too-long filter always match the network being trained. ``samples_per_epoch`` draws that many random
    training indices each epoch (required for the renderer's virtual index space; ``None`` = one pass).
    A training set without a single sample stops here, with what its sources skipped. (A conf/data node's
    ``root``, ``labels_file`` and ``mix`` are values its sources interpolate, not arguments: ``config.data_module``
    builds this module from the node without them.)

    Sources with ``epoch_indices(rng, n)`` (``MixedSource``) choose each epoch's training indices themselves
    (per-source ratios). ``augment`` (an albumentations pipeline, training only) is seeded per batch from ``seed`` and
    the batch's indices (``PreparedDataset.__getitems__``), so a fixed seed reproduces the run with any number of
    workers, and a resumed run augments its batches exactly as an uninterrupted one.

    ``num_workers``: a number or ``auto`` (``auto_num_workers``, resolved when the trainer is known), for
    training; validation gets ``eval_workers`` of it.
    ``pin_memory``: pin batches when the trainer's device is a CUDA GPU (never on CPU, where it would only cost).
    ``pad_multiple``: training batches are padded to a multiple of it; ``auto`` = ``GPU_PAD_MULTIPLE`` on a CUDA
    GPU, 1 elsewhere (validation batches are never rounded: their shapes are the same every validation).
    """

    KNOBS: ClassVar[Knobs] = {"batch_size": SIZE, "eval_batch_size": SIZE,
                              "num_workers": Knob(int, 0, words=("auto",)),
                              "samples_per_epoch": Knob(int, 1, optional=True), "pool_batches": SIZE,
                              "pad_multiple": Knob(int, 1, words=("auto",))}

    def __init__(self, train, val, charset: Charset, output_length: Callable[[int], int], *, preprocess: Preprocess,
                 batch_size: int, eval_batch_size: int, num_workers: int | str, samples_per_epoch: int | None,
                 seed: int, augment: Callable | None = None, pool_batches: int = 50,
                 pin_memory: bool = True, pad_multiple: int | str = "auto"):
        super().__init__()
        check(self.KNOBS, "data.", batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers,
              samples_per_epoch=samples_per_epoch, pool_batches=pool_batches, pad_multiple=pad_multiple)
        if not len(train):  # else the scheduler fails on 0 steps, saying nothing of why
            skipped = index_skips(train)
            raise ConfigError(f"no training sample in {train!r}: "
                              + (f"every line of its index was skipped: {skipped}" if skipped else "its index is empty"))
        self.train_set = PreparedDataset(train, charset, preprocess, output_length, augment, seed=seed)
        self.val_set = PreparedDataset(val, charset, preprocess, output_length, None)
        self.collate = Collate(output_length)
        self.pad_multiple = pad_multiple
        self.width_policy = preprocess.width_policy
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.pool_batches = pool_batches
        if samples_per_epoch is None and len(self.train_set) > MAX_FULL_PASS:
            raise ValueError(f"the training source has {len(self.train_set):,} samples: set data.samples_per_epoch "
                             "(one pass over a virtual or huge source is not an epoch)")
        log.info("data: train %r (%d), val %r (%d)", train, len(self.train_set), val, len(self.val_set))

    def setup(self, stage: str) -> None:
        """DDP: the size indexes of stored archives (LMDB) are built once, not by every rank at once. Global rank 0
        reads or builds them while the other ranks wait at a barrier; then the first rank of each other node reads
        them (or builds them, where the index lives in a node-local cache) while the rest wait again; the rest read
        the stored index when their first epoch starts. Without this, 32 ranks read a whole new archive at once,
        and the early ones wait at their first collective (whose timeout is 30 min)."""
        trainer = getattr(self, "trainer", None)
        if stage != "fit" or trainer is None or trainer.world_size < 2:
            return  # one process: read or built when the first epoch starts
        for first in (trainer.global_rank == 0, trainer.local_rank == 0):
            if first:
                for dataset in (self.train_set, self.val_set):
                    index_sizes(dataset.source)
            trainer.strategy.barrier("crnn_lit.size_index")

    def _rank(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.global_rank) if trainer is not None else 0

    def _workers(self) -> int:
        if self.num_workers == "auto":  # once, when the trainer (processes per node, SLURM task or not) is known
            self.num_workers = auto_num_workers(self.trainer)
            log.info("data: num_workers auto -> %d per training process", self.num_workers)
        return self.num_workers

    def _on_cuda(self) -> bool:
        trainer = getattr(self, "trainer", None)
        return trainer is not None and trainer.strategy.root_device.type == "cuda"

    def _train_collate(self) -> Collate:
        multiple = self.pad_multiple
        if multiple == "auto":  # GPU: widths rounded to 8 px (181 input shapes per epoch → 31); CPU: as they come
            multiple = GPU_PAD_MULTIPLE if self._on_cuda() else 1
        return Collate(self.collate.output_length, multiple)

    def _loader(self, dataset: PreparedDataset, sampler: WidthBatchSampler, workers: int,
                collate: Collate) -> DataLoader:
        rank = self._rank()
        pin = self.pin_memory and self._on_cuda()
        if workers > 0:
            # One OpenCV thread per process: the workers are the parallelism (no oversubscribed cores), and no
            # OpenCV thread pool is alive here when they fork (a worker touching an inherited pool's state, e.g.
            # cv2.setNumThreads in the child, deadlocks).
            cv2.setNumThreads(1)
        return DataLoader(
            dataset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
            persistent_workers=workers > 0, pin_memory=pin,
            worker_init_fn=partial(shielded_worker, init=partial(seed_worker, rank=rank))  # ignores preemption signals
            if workers > 0 else None,
            generator=torch.Generator().manual_seed(self.seed),  # worker seeds independent of other RNG use
        )

    def train_dataloader(self) -> ResumableLoader:
        draw = getattr(self.train_set.source, "epoch_indices", None)
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.seed, num_samples=self.samples_per_epoch,
                               draw=draw)
        width = self.train_set.widths if self.width_policy == "bucketed" else None
        # drop_last=False: every sample of the epoch is used once (the batch sampler balances ranks by splitting)
        batches = WidthBatchSampler(sampler, self.batch_size, width, self.pool_batches, drop_last=False)
        return ResumableLoader(self._loader(self.train_set, batches, self._workers(), self._train_collate()))  # a resume continues inside the epoch

    def val_dataloader(self) -> DataLoader:
        width = self.val_set.widths if self.width_policy != "fixed" else None
        batches = WidthBatchSampler(EpochSampler(len(self.val_set), shuffle=False), self.eval_batch_size, width)
        return self._loader(self.val_set, batches, eval_workers(self._workers()), self.collate)
