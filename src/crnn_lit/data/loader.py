"""The training loader's two duties beyond torch's DataLoader: resume inside an epoch (``ResumableLoader``) and
survive a preemption signal sent to the whole process group (``shielded_worker``). Here, in ``data/``, because
the data module builds the loaders; training (``crnn_lit.training``) checkpoints their state."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable

from torch.utils.data import DataLoader, Sampler

# --- preemption ----------------------------------------------------------------------------------------------
# Sent to every process of a job (`timeout`, SLURM's step signalling, submitit's time-limit notice): the main
# process saves and stops (LastCheckpoint); a DataLoader worker killed by one would crash the run instead
# ("DataLoader worker (pid …) is killed by signal"). A worker still ends when the loader shuts it down or its
# parent is gone (torch's worker watchdog).
WORKER_IGNORED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)


def shielded_worker(worker_id: int, init: Callable[[int], None] | None = None) -> None:
    """DataLoader ``worker_init_fn``: ignore ``WORKER_IGNORED_SIGNALS``, then run ``init`` (the loader's own
    ``worker_init_fn``). Use as ``functools.partial(shielded_worker, init=...)``."""
    for sig in WORKER_IGNORED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if init is not None:
        init(worker_id)


class _SkippableBatches(Sampler):
    """A batch sampler whose passes start ``skip`` batches in (set only while a resumed epoch's iterator is made).

    ``sampler`` is the wrapped batch sampler's own, so Lightning's ``set_epoch`` still reaches it.
    """

    def __init__(self, batches: Sampler):
        self.batches, self.skip = batches, 0
        self.sampler = getattr(batches, "sampler", None)

    def __iter__(self):
        return itertools.islice(iter(self.batches), self.skip, None)

    def __len__(self) -> int:
        return len(self.batches)


class ResumableLoader(DataLoader):
    """A training loader that Lightning checkpoints: its state is (epoch, batches delivered this epoch).

    Lightning saves ``state_dict()`` of every train loader that has one and, on a resume inside an epoch, hands
    it back through ``load_state_dict`` before iterating; the loader then skips what was already trained on.
    Counting happens where batches leave the loader, so worker prefetching does not inflate it. The sampler's
    epoch is restored right away too: with workers, indices are drawn as soon as the iterator starts.
    (torchdata's ``StatefulDataLoader`` would fast-forward the same way, but it is one more dependency and a fork
    of the loader we measured; Lightning restores it through the same route, which ``LoaderPosition`` replaces.)
    """

    def __init__(self, loader: DataLoader):
        if loader.batch_sampler is None:
            raise TypeError("ResumableLoader needs a DataLoader built with a batch_sampler")
        extra = {"prefetch_factor": loader.prefetch_factor} if loader.num_workers > 0 else {}
        super().__init__(loader.dataset, batch_sampler=_SkippableBatches(loader.batch_sampler),
                         collate_fn=loader.collate_fn, num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                         timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
                         multiprocessing_context=loader.multiprocessing_context, generator=loader.generator,
                         persistent_workers=loader.persistent_workers, **extra)
        self.position = 0  # batches of the current epoch delivered so far
        self._skip = 0  # batches the next pass leaves out (set by load_state_dict)

    def __iter__(self):
        skip, self._skip = self._skip, 0
        self.batch_sampler.skip = skip
        try:  # torch's iterators call iter(batch_sampler) more than once while they are set up
            iterator = super().__iter__()
        finally:
            self.batch_sampler.skip = 0
        self.position = skip
        for batch in iterator:
            self.position += 1
            yield batch

    def state_dict(self) -> dict:
        sampler = self.batch_sampler.sampler
        return {"epoch": int(getattr(sampler, "epoch", 0)), "batches": int(self.position)}

    def load_state_dict(self, state: dict) -> None:
        """Resume inside the epoch the state was saved in; a state at an epoch boundary changes nothing (the
        next epoch starts from its first batch, and Lightning sets its number)."""
        batches = int(state.get("batches", 0))
        if not 0 < batches < len(self):
            return
        self._skip = batches
        sampler = self.batch_sampler.sampler
        if "epoch" in state and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(int(state["epoch"]))
