"""Every Lightning callback of a training run, so ``CRNNSystem`` holds only model, loss, optimizers and metrics.

Wired through ``conf/callbacks/default.yaml`` (``LogConfig``, which needs the resolved config, is added by
``crnn_lit.train``):

* ``TotalSteps``: one-cycle's ``total_steps`` from the trainer's step estimate.
* ``EpochStats``: ``train/images_per_sec``, ``data/padding_waste``, ``data/rejected_<reason>`` once per epoch;
  ``data/val_rejected_<reason>`` once per validation.
* ``ProgressBar``: Lightning's, with the training loss read only when it refreshes.
* ``ValSampleTable``: W&B ``val/sample_images`` (label → prediction) and the ``val/samples`` table.
* ``LearningCurve``: validation metrics against training images, wall-clock and CPU hours, across resumes.
* exact resume: ``LastCheckpoint`` (``last.ckpt`` every N minutes, after validation, at the end, on preemption),
  ``LoaderPosition`` (the position inside the epoch), ``RngState`` (torch/CUDA/numpy/Python RNG states).
"""

from __future__ import annotations

import csv
import functools
import inspect
import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Checkpoint, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException

from crnn_lit.data.loader import ResumableLoader
from crnn_lit.preprocess import to_pixels
from crnn_lit.training.tracking import AppendingCSVLogger, cpu_seconds, wandb_loggers

log = logging.getLogger("crnn_lit.train")


class TotalSteps(L.Callback):
    """A scheduler whose constructor takes ``total_steps`` (one-cycle) gets the trainer's estimate of the run's
    optimizer steps. Bound at setup, before ``configure_optimizers`` builds the scheduler."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        factory = getattr(pl_module, "scheduler_factory", None)
        if stage == "fit" and factory is not None and "total_steps" in inspect.signature(factory).parameters:
            total = int(trainer.estimated_stepping_batches)
            pl_module.scheduler_factory = functools.partial(factory, total_steps=total)


class EpochStats(L.Callback):
    """Per training epoch: images/s and the samples the label policy rejected, by reason (summed over ranks; also
    printed, so nothing is silently lost), and the mean padding waste of the batches. Per validation: the
    validation samples rejected (``data/val_rejected_<reason>``, printed too), which ``val/acc`` does not count."""

    def __init__(self):
        self.rejected: Counter = Counter()
        self.val_rejected: Counter = Counter()
        self.images, self.batches, self.steps, self.waste, self.start = 0, 0, 0, 0.0, 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()  # a mid-epoch resume skips on_train_epoch_start
        if trainer.is_global_zero:  # the CSV rows logged after the checkpoint are about to be logged again
            for lg in trainer.loggers:
                if isinstance(lg, AppendingCSVLogger):
                    lg.forget_from(trainer.global_step)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.rejected.clear()
        self.images, self.batches, self.steps, self.waste, self.start = 0, 0, 0, 0.0, time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps += 1  # every rank runs as many batches, usable or not: the same count on every rank
        self.rejected.update(batch.rejected)
        if len(batch):  # a batch whose samples were all rejected trains nothing (CRNNSystem: a zero loss)
            self.images += len(batch)
            self.waste += batch.padding_waste  # a float from the collate function: no host sync
            self.batches += 1

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self.steps:  # no batch: a resume from the epoch's last checkpoint (on every rank alike: the collectives
            return  # below are reached by all ranks or none)
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        # summed over ranks: the global rate (a DDP rank's own rate times the world size, roughly)
        pl_module.log("train/images_per_sec", self.images / elapsed, sync_dist=True, reduce_fx="sum")
        pl_module.log("data/padding_waste", self.waste / max(self.batches, 1), sync_dist=True)
        self._report(trainer, pl_module, self.rejected, "data/rejected",
                     f"epoch {trainer.current_epoch}: skipped training samples")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.val_rejected.clear()

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self.val_rejected.update(batch.rejected)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # the sanity check reads a few batches: its counts would mislead
            self._report(trainer, pl_module, self.val_rejected, "data/val_rejected",
                         f"validation at epoch {trainer.current_epoch}: skipped validation samples (not in val/acc)")

    @staticmethod
    def _report(trainer, pl_module, rejected: Counter, key: str, title: str) -> None:
        """Log each reason's count summed over ranks as ``<key>_<reason>``, and print them in one line."""
        if trainer.world_size > 1:  # every rank's counts (the reasons differ by rank: one small gather)
            ranks = [None] * trainer.world_size
            torch.distributed.all_gather_object(ranks, dict(rejected))
            rejected = sum(map(Counter, ranks), Counter())
        for reason, count in sorted(rejected.items()):
            pl_module.log(f"{key}_{reason}", float(count))
        if rejected:
            pl_module.print(f"{title}: " + ", ".join(f"{r}={c}" for r, c in sorted(rejected.items())))


class ProgressBar(TQDMProgressBar):
    """Lightning's progress bar, showing the training loss as ``loss`` when it refreshes (every ``refresh_rate``
    steps). ``CRNNSystem`` logs ``train/loss`` without ``prog_bar``, which Lightning would read from the device
    (``.item()``, a host sync) every step."""

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        loss = trainer.callback_metrics.get("train/loss")
        if trainer.training and loss is not None:
            metrics["loss"] = f"{float(loss):.3g}"
        return metrics


class ValSampleTable(L.Callback):
    """The first validation samples of each validation in W&B, as many as the W&B logger's ``val_samples``: the
    images with the captions ``label → prediction`` (``val/sample_images``) and the table ``val/samples``
    (sample number in that list, label, prediction, confidence, correct). The images are logged as a list, not
    as table cells: wandb writes media inside a table as the word "Image" in offline mode and saves no file
    (wandb/wandb#4611), so an offline run synced later would lose them. Validation batches are sorted by width,
    so these are the narrowest images (the same ones every epoch: the panel shows how their reading evolves).
    Reads the predictions ``validation_step`` returns; global rank 0 only."""

    COLUMNS = ("sample", "label", "prediction", "confidence", "correct")
    KEY = "val/samples"
    IMAGES_KEY = "val/sample_images"

    def __init__(self):
        self.logger, self.limit, self.rows = None, 0, []

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.logger, self.limit, self.rows = None, 0, []
        if trainer.sanity_checking or rank_zero_only.rank != 0:
            return
        for lg in wandb_loggers(trainer.loggers):
            if lg.val_samples > 0 and lg._wandb_init.get("mode") != "disabled":
                self.logger, self.limit = lg, lg.val_samples
                return

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.logger is None or not outputs:
            return
        for i in range(min(self.limit - len(self.rows), len(batch))):
            pixels = to_pixels(batch.images[i, :, :, : int(batch.widths[i])])  # the padding cropped
            pred = outputs[i]
            self.rows.append([pixels, batch.labels[i], pred.text, round(float(pred.confidence), 4),
                              pred.text == batch.labels[i]])

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.logger is None or not self.rows:
            return
        import wandb

        # one size for all (W&B lays a list of images out in one grid): right-padded by repeating the last
        # column, as training batches are
        width = max(row[0].shape[1] for row in self.rows)
        images = []
        for pixels, label, prediction, *_ in self.rows:
            padded = np.pad(pixels, ((0, 0), (0, width - pixels.shape[1]), (0, 0)), mode="edge")
            images.append(wandb.Image(padded.squeeze(2) if padded.shape[2] == 1 else padded,
                                      caption=f"{label} → {prediction}"))
        table = wandb.Table(columns=list(self.COLUMNS), data=[[i, *row[1:]] for i, row in enumerate(self.rows)])
        self.logger.experiment.log({self.IMAGES_KEY: images, self.KEY: table,
                                    "trainer/global_step": trainer.global_step})
        self.logger, self.rows = None, []


class LearningCurve(L.Callback):
    """Appends one CSV row per validation: step, epoch, training images seen (all ranks), cumulative training
    wall-clock and CPU hours (this process tree), and every ``val/*`` metric. The counters live in the
    checkpoint, so a resumed run continues the same curve instead of restarting it at zero."""

    def __init__(self, path: str):
        self.path = Path(path)
        self.images, self.wall_s, self.cpu_s = 0, 0.0, 0.0  # totals up to the last checkpointed moment
        self._wall0 = self._cpu0 = None

    def _totals(self) -> tuple[float, float]:
        if self._wall0 is None:
            return self.wall_s, self.cpu_s
        return self.wall_s + time.perf_counter() - self._wall0, self.cpu_s + cpu_seconds() - self._cpu0

    def continue_from(self, totals: dict | None) -> None:
        """Count on from an earlier stage's totals (a run started with ``init_from``), before training starts."""
        if totals:
            self.images, self.wall_s, self.cpu_s = int(totals["images"]), totals["wall_s"], totals["cpu_s"]

    def on_train_start(self, trainer, pl_module) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # counted at the start, so a checkpoint written at this batch's end (by any callback) includes it
        self.images += len(batch) * trainer.world_size

    def on_validation_end(self, trainer, pl_module) -> None:
        # only fit's validations: a trainer.validate() after training would restore an older checkpoint's counters
        if trainer.sanity_checking or trainer.global_rank != 0 or trainer.state.fn != "fit":
            return
        wall, cpu = self._totals()
        row = {"step": trainer.global_step, "epoch": trainer.current_epoch, "images": self.images,
               "wall_hours": round(wall / 3600, 4), "cpu_hours": round(cpu / 3600, 4)}
        row |= {k: round(float(v), 5) for k, v in sorted(trainer.callback_metrics.items()) if k.startswith("val/")}
        new = not self.path.is_file()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)

    def state_dict(self) -> dict:
        wall, cpu = self._totals()
        return {"images": self.images, "wall_s": wall, "cpu_s": cpu}

    def load_state_dict(self, state_dict: dict) -> None:
        self.images, self.wall_s, self.cpu_s = state_dict["images"], state_dict["wall_s"], state_dict["cpu_s"]
        if self._wall0 is not None:  # restored after on_train_start: count from now
            self._wall0, self._cpu0 = time.perf_counter(), cpu_seconds()


# --- exact resume ----------------------------------------------------------------------------------------------
class LastCheckpoint(Checkpoint):
    """Keeps ``<dirpath>/last.ckpt`` = the newest training state, for ``resume=auto``.

    It must run after every ``ModelCheckpoint``: the save after a validation holds their state (which checkpoint
    is best), and they update it in the same hook. A ``Checkpoint`` subclass, so Lightning keeps it among the
    checkpoint callbacks at the end of the list, in the given order; ``crnn_lit.train`` gives it last and
    ``setup`` refuses any other order. (Saved before them, a resumed run named the best checkpoint of the
    validation before: issue #33.)

    Saved every ``every_minutes`` of training (and/or every ``every_n_train_steps`` optimizer steps; None = off),
    after every validation, when training ends, and at the step reached when one of ``signals`` arrives — a
    preemption or time-limit notice: ``timeout``, SLURM, preemptible VMs (SIGTERM), submitit (SIGUSR2), Lightning's
    SLURM convention (SIGUSR1). The handler only notes the signal; the save happens between two optimizer steps
    (after the epoch's validation when the step ends an epoch), then the run stops with exit status 0 and one log
    line. A handler the launcher had installed for that signal
    before the Trainer started (submitit's, which requeues the job) runs after the save, so the requeued job's
    ``resume=auto`` finds the step reached. (Lightning 2.6's ``ModelCheckpoint(save_last=True)`` defers last.ckpt
    to its top-k save, which waits for the monitored validation metric, and saves nothing on a signal.)

    Every save is collective (``trainer.save_checkpoint`` ends in a barrier), so all ranks must decide alike: the
    step schedule is a function of the step; the clock and the signals are read at agreed steps, by one all-reduce
    of [signals seen on any rank, rank 0's clock says due, the steps to the next check as rank 0 measures them]
    about every ``sync_every_s`` seconds. (``ModelCheckpoint(train_time_interval=...)`` broadcasts rank 0's
    decision as a pickled object every step.) A single process reads its ``clock`` every step.
    """

    FILENAME = "last.ckpt"

    def __init__(self, dirpath: str, every_minutes: float | None, every_n_train_steps: int | None,
                 signals: Sequence[str] = ("SIGTERM", "SIGUSR1", "SIGUSR2"), sync_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(dirpath) / self.FILENAME
        self.every_s = every_minutes * 60 if every_minutes else None
        self.every = every_n_train_steps or 0
        self.signals = [signal.Signals[name] for name in signals]
        self.sync_every_s = sync_every_s
        self.clock = clock
        self._saved_step = -1
        self._received: set[signal.Signals] = set()  # noted by the handler
        self._pending: set[signal.Signals] = set()  # agreed on, acted on when the next epoch starts
        self._launcher_handlers: dict = {}  # per signal: the handler installed before the Trainer's
        self._replaced: dict = {}  # per signal: the Trainer's handler ours replaced (restored when training ends)
        self._step_seen = self._next_check = self._check_step = 0
        self._saved_at = self._check_at = 0.0

    def _save(self, trainer: L.Trainer) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the full state, to resume from
        self._saved_step, self._saved_at = trainer.global_step, self.clock()

    def setup(self, trainer, pl_module, stage) -> None:
        later = [type(cb).__name__ for cb in trainer.callbacks[trainer.callbacks.index(self) + 1:]
                 if isinstance(cb, ModelCheckpoint)] if self in trainer.callbacks else []
        if later:
            raise ValueError(f"LastCheckpoint must come after every ModelCheckpoint in the callbacks, not before "
                             f"{', '.join(later)}: last.ckpt would record the best checkpoint of the validation before")
        if stage == "fit":  # before the Trainer registers its own handlers (when fit starts running)
            self._launcher_handlers = {sig: signal.getsignal(sig) for sig in self.signals}

    def on_train_start(self, trainer, pl_module) -> None:
        self._received, self._pending = set(), set()
        self._step_seen = self._check_step = trainer.global_step
        self._next_check = trainer.global_step + 1
        self._saved_at = self._check_at = self.clock()
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            self._replaced = {sig: signal.signal(sig, self._notice) for sig in self.signals}

    def _notice(self, signum, frame) -> None:
        self._received.add(signal.Signals(signum))  # acted on between two steps, never inside a step

    def _restore_signals(self) -> None:
        for sig, handler in self._replaced.items():
            if handler is not None:
                signal.signal(sig, handler)
        self._replaced = {}

    def _check(self, trainer: L.Trainer, step: int) -> tuple[set[signal.Signals], bool]:
        """(signals received on any rank, whether the clock says save), the same on every rank."""
        now = self.clock()
        due = trainer.global_rank == 0 and self.every_s is not None and now - self._saved_at >= self.every_s
        if trainer.world_size == 1:
            self._next_check = step + 1
            return set(self._received), due
        steps = 0  # rank 0 proposes the distance to the next check: about sync_every_s at its step rate
        if trainer.global_rank == 0:
            steps = max(1, round(self.sync_every_s * (step - self._check_step) / max(now - self._check_at, 1e-6)))
        flags = torch.tensor([sig in self._received for sig in self.signals] + [due, steps], dtype=torch.int64,
                             device=trainer.strategy.root_device)
        flags = trainer.strategy.reduce(flags, reduce_op="max").tolist()
        self._next_check, self._check_step, self._check_at = step + flags[-1], step, now
        return {sig for sig, seen in zip(self.signals, flags) if seen}, bool(flags[-2])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step == self._step_seen:  # inside a gradient accumulation: no optimizer step yet
            return
        self._step_seen = step
        due, stop = bool(self.every) and step % self.every == 0, set()
        if step >= self._next_check:
            stop, timed = self._check(trainer, step)
            due = due or timed
        if (due or stop) and step != self._saved_step:
            self._save(trainer)
        if stop and batch_idx + 1 >= trainer.num_training_batches:
            # the epoch's last step: stop as the next one starts, after the epoch's validation (which saves again)
            # — Lightning resumes a checkpoint of this step in the next epoch, leaving this one unvalidated
            self._pending = stop
        elif stop:  # Lightning logs this step's row after this hook: never, since the run stops here
            self._stop(trainer, stop, logged=False)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending:  # the step before was logged if it fell on the logging cadence
            self._stop(trainer, self._pending, logged=trainer.global_step % trainer.log_every_n_steps == 0)

    @staticmethod
    def _log_step(trainer: L.Trainer) -> None:
        """The training metrics of the step reached, as the row Lightning would have logged for it (``step`` =
        global step − 1, its convention), flushed: the loggers' last row is where the run stopped."""
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        if not metrics or not trainer.is_global_zero:
            return
        for lg in trainer.loggers:
            lg.log_metrics(metrics, step=trainer.global_step - 1)
            lg.save()

    def _stop(self, trainer: L.Trainer, received: set[signal.Signals], logged: bool) -> None:
        if not logged:
            self._log_step(trainer)
        names = "+".join(sig.name for sig in sorted(received))
        if trainer.is_global_zero:
            log.warning("preempted by %s at step %d: saved %s; continue with resume=auto", names,
                        trainer.global_step, self.path)
        # our handlers stay until Lightning's teardown puts back the launcher's: the SIGTERM a requeue sends next
        # must not reach Lightning's (it broadcasts from inside the handler)
        for sig in sorted(received):  # e.g. submitit's: requeues the job (rank 0) and exits
            handler = self._launcher_handlers.get(sig)
            if callable(handler):
                handler(sig, None)
        raise SIGTERMException  # Lightning's own way out of fit: exit status 0

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.state.fn == "fit":
            self._save(trainer)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save(trainer)
        self._restore_signals()


class LoaderPosition(L.Callback):
    """Carries the ``ResumableLoader`` state through the checkpoint as callback state and applies it when
    training starts. Lightning's own route (loader states in the fit-loop state) is skipped when the loader was
    set up before the restore — which ``trainer.estimated_stepping_batches`` (``TotalSteps``) does.
    Applying it here is early enough: the loader draws its first indices at the first batch."""

    def __init__(self):
        self._pending: dict | None = None
        self._trainer: L.Trainer | None = None

    @property
    def state_key(self) -> str:
        return "_LoaderPosition"  # the key of checkpoints written before the class was public: they still resume

    @staticmethod
    def _loader(trainer: L.Trainer) -> ResumableLoader | None:
        loader = trainer.train_dataloader
        return loader if isinstance(loader, ResumableLoader) else None

    def state_dict(self) -> dict:
        loader = self._loader(self._trainer) if self._trainer is not None else None
        return loader.state_dict() if loader is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._pending = dict(state_dict) or None

    def setup(self, trainer, pl_module, stage) -> None:
        self._trainer = trainer

    def on_train_start(self, trainer, pl_module) -> None:
        state, self._pending = self._pending, None
        loader = self._loader(trainer)
        if not state or loader is None or not 0 < state.get("batches", 0) < len(loader):
            return  # fresh start, or the checkpoint closed an epoch: Lightning starts the next one as usual
        ready = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        if ready != state["batches"]:
            log.warning("resume: the loop is at batch %d of the epoch but the loader state at %d; "
                        "not skipping (batches of this epoch may repeat)", ready, state["batches"])
            return
        loader.load_state_dict(state)


class RngState(L.Callback):
    """Saves the torch, CUDA, numpy and Python RNG states in every checkpoint and restores them on resume, so a
    resumed run draws the same random numbers as an uninterrupted one. Tensors/ints only, so
    ``torch.load(weights_only=True)`` reads them; under the checkpoint's top-level ``KEY``, where earlier
    checkpoints keep them too."""

    KEY = "crnn_lit_rng"

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        version, mt_key, position, has_gauss, cached = np.random.get_state()
        py_version, py_state, py_gauss = random.getstate()
        checkpoint[self.KEY] = {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [version, torch.from_numpy(mt_key.astype(np.int64)), int(position), int(has_gauss),
                      float(cached)],
            "python": [py_version, list(py_state), py_gauss],
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        states = checkpoint.get(self.KEY)
        if states is None:
            return
        torch.set_rng_state(states["torch"])
        if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states["cuda"])
        version, mt_key, position, has_gauss, cached = states["numpy"]
        np.random.set_state((version, mt_key.numpy().astype(np.uint32), position, has_gauss, cached))
        py_version, py_state, py_gauss = states["python"]
        random.setstate((py_version, tuple(py_state), py_gauss))


class LogConfig(L.Callback):
    """Logs the resolved config to every logger once the strategy has set the ranks (only rank 0 logs)."""

    def __init__(self, config: dict):
        self.config = config

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for lg in trainer.loggers:
            lg.log_hyperparams(self.config)
