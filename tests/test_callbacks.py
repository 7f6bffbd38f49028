"""crnn_lit.training.callbacks on their own (the training runs in test_train/test_scaling/test_data_pipeline use them all)."""

from __future__ import annotations

import functools
import os
import random
import signal
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from crnn_lit.training.callbacks import EpochStats, LastCheckpoint, RngState, TotalSteps


class FakeBatch:
    def __init__(self, size: int, waste: float, rejected: dict):
        self.size, self.padding_waste, self.rejected = size, waste, rejected

    def __len__(self):
        return self.size


def test_epoch_stats_counts_images_waste_and_rejections():
    logged, printed = {}, []
    module = SimpleNamespace(log=lambda name, value, **kw: logged.__setitem__(name, value), print=printed.append)
    trainer = SimpleNamespace(current_epoch=3, world_size=1)
    stats = EpochStats()
    stats.on_train_epoch_start(trainer, module)
    for batch in (FakeBatch(60, 0.10, {"too_long": 2}), FakeBatch(0, 0.0, {"unreadable": 4}),
                  FakeBatch(64, 0.30, {"too_long": 1, "out_of_charset": 1})):
        stats.on_train_batch_start(trainer, module, batch, 0)
    stats.on_train_epoch_end(trainer, module)
    assert logged["data/padding_waste"] == pytest.approx(0.20)  # the empty batch trained nothing: not averaged in
    assert logged["data/rejected_too_long"] == 3.0 and logged["data/rejected_unreadable"] == 4.0
    assert logged["data/rejected_out_of_charset"] == 1.0 and logged["train/images_per_sec"] > 0
    assert printed == ["epoch 3: skipped training samples: out_of_charset=1, too_long=3, unreadable=4"]
    assert stats.images == 124


def test_epoch_stats_counts_validation_rejections_once_per_validation():
    """Validation samples the label policy rejects are not in val/acc: logged and printed once per validation (not
    for the sanity check), counted afresh each time."""
    logged, printed = {}, []
    module = SimpleNamespace(log=lambda name, value, **kw: logged.__setitem__(name, value), print=printed.append)
    stats = EpochStats()
    for sanity, epoch, batches in ((True, 0, [{"too_long": 9}]), (False, 0, [{"out_of_charset": 3}, {"too_long": 2}]),
                                   (False, 1, [{"out_of_charset": 1}, {}])):
        trainer = SimpleNamespace(current_epoch=epoch, world_size=1, sanity_checking=sanity)
        stats.on_validation_epoch_start(trainer, module)
        for rejected in batches:
            stats.on_validation_batch_start(trainer, module, FakeBatch(8, 0.1, rejected), 0)
        stats.on_validation_epoch_end(trainer, module)
    assert printed == ["validation at epoch 0: skipped validation samples (not in val/acc): out_of_charset=3, too_long=2",
                       "validation at epoch 1: skipped validation samples (not in val/acc): out_of_charset=1"]
    assert logged == {"data/val_rejected_out_of_charset": 1.0, "data/val_rejected_too_long": 2.0}


def test_total_steps_goes_only_to_schedulers_that_take_it():
    trainer = SimpleNamespace(estimated_stepping_batches=1234.0)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    onecycle = SimpleNamespace(scheduler_factory=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=0.1))
    TotalSteps().setup(trainer, onecycle, "fit")
    assert onecycle.scheduler_factory(optimizer).total_steps == 1234
    step = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=10)
    steplr = SimpleNamespace(scheduler_factory=step)
    TotalSteps().setup(trainer, steplr, "fit")
    assert steplr.scheduler_factory is step


def test_rng_state_restores_every_generator(tmp_path):
    callback, checkpoint = RngState(), {}
    callback.on_save_checkpoint(None, None, checkpoint)
    path = tmp_path / "rng.ckpt"
    torch.save(checkpoint, path)
    draws = (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)])
    callback.on_load_checkpoint(None, None, torch.load(path, weights_only=True))  # tensors and ints only
    assert (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]) == draws


# --- LastCheckpoint: when it saves, decided without a real clock, signal sender or second rank ------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _trainer(rank: int = 0, world_size: int = 1, reduce=None) -> SimpleNamespace:
    """What LastCheckpoint reads of a Trainer; ``saved`` lists the step of every save."""
    trainer = SimpleNamespace(global_step=0, global_rank=rank, world_size=world_size, is_global_zero=rank == 0,
                              fast_dev_run=False, sanity_checking=False, state=SimpleNamespace(fn="fit"), saved=[],
                              callbacks=[], num_training_batches=float("inf"), log_every_n_steps=50,
                              callback_metrics={}, loggers=[],
                              strategy=SimpleNamespace(root_device=torch.device("cpu"), reduce=reduce))
    trainer.save_checkpoint = lambda path, weights_only: trainer.saved.append(trainer.global_step)
    return trainer


@pytest.fixture(autouse=True)
def lightning_teardown():
    """What Lightning's teardown does after fit: these tests call on_train_start (which installs LastCheckpoint's
    signal handlers) on a fake trainer, so put the handlers back as a real Trainer would."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)}
    yield
    for sig, handler in before.items():
        signal.signal(sig, handler)


def _steps(callback: LastCheckpoint, trainer, clock: Clock, steps: int, seconds_per_step: float,
           accumulate: int = 1) -> None:
    for _ in range(steps):
        for _ in range(accumulate):  # on_train_batch_end once per micro-batch; the step moves on the last one
            clock.now += seconds_per_step / accumulate
            callback.on_train_batch_end(trainer, None, None, None, 0)
        trainer.global_step += 1
        callback.on_train_batch_end(trainer, None, None, None, 0)


def test_last_checkpoint_saves_by_training_time(tmp_path):
    clock = Clock()
    callback, trainer = LastCheckpoint(str(tmp_path), 10, None, clock=clock), _trainer()
    callback.on_train_start(trainer, None)
    _steps(callback, trainer, clock, 5, 180)  # 3 minutes per step: due at 12 minutes
    callback.on_validation_end(trainer, None)  # saves too, and the 10 minutes count from there
    _steps(callback, trainer, clock, 5, 180, accumulate=2)
    callback.on_train_end(trainer, None)
    assert trainer.saved == [4, 5, 9, 10]


def test_last_checkpoint_step_schedule_is_kept(tmp_path):
    clock = Clock()
    callback, trainer = LastCheckpoint(str(tmp_path), None, 3, clock=clock), _trainer()
    callback.on_train_start(trainer, None)
    _steps(callback, trainer, clock, 7, 1e4, accumulate=3)  # hours per step: no time-based save without minutes
    assert trainer.saved == [3, 6]


def test_last_checkpoint_on_a_signal_saves_then_runs_the_launchers_handler(tmp_path, caplog):
    """The handler installed before the Trainer (submitit's requeue) runs after the save of the step reached; the
    Trainer's own handler (installed between setup and the start of training) does not run."""
    calls = []
    launcher = lambda signum, frame: calls.append(("launcher", signum, list(trainer.saved)))
    trainers = lambda signum, frame: calls.append(("trainer", signum))
    original = signal.signal(signal.SIGUSR2, launcher)
    try:
        clock = Clock()
        callback, trainer = LastCheckpoint(str(tmp_path), 10, None, clock=clock), _trainer()
        callback.setup(trainer, None, "fit")
        signal.signal(signal.SIGUSR2, trainers)
        callback.on_train_start(trainer, None)
        _steps(callback, trainer, clock, 2, 1)
        os.kill(os.getpid(), signal.SIGUSR2)  # its Python handler runs before the next line
        trainer.global_step += 1
        with pytest.raises(SIGTERMException), caplog.at_level("WARNING", logger="crnn_lit.train"):
            callback.on_train_batch_end(trainer, None, None, None, 0)
        assert calls == [("launcher", signal.SIGUSR2, [3])]
        assert signal.getsignal(signal.SIGUSR2) == callback._notice  # until Lightning's teardown restores its own
        assert [r.getMessage() for r in caplog.records] == [
            f"preempted by SIGUSR2 at step 3: saved {tmp_path / 'last.ckpt'}; continue with resume=auto"]
    finally:
        signal.signal(signal.SIGUSR2, original)


def test_last_checkpoint_on_a_signal_at_an_epochs_last_step_stops_after_its_validation(tmp_path):
    """A checkpoint of an epoch's last step resumes in the next epoch: stopping there would skip the validation."""
    clock = Clock()
    callback, trainer = LastCheckpoint(str(tmp_path), 10, None, clock=clock), _trainer()
    trainer.num_training_batches = 4
    callback.on_train_start(trainer, None)
    _steps(callback, trainer, clock, 3, 1)
    callback._notice(signal.SIGTERM, None)
    trainer.global_step += 1
    callback.on_train_batch_end(trainer, None, None, None, 3)  # the epoch's last batch: saved, not stopped
    callback.on_validation_end(trainer, None)
    with pytest.raises(SIGTERMException):
        callback.on_train_batch_start(trainer, None, None, 0)
    assert trainer.saved == [4, 4]


def test_last_checkpoint_ranks_decide_together(tmp_path):
    """DDP: checks at agreed steps only, about sync_every_s apart at rank 0's step rate; rank 0's clock decides
    the time-based saves; a signal seen by any rank stops every rank."""
    clock, reduced = Clock(), []

    def reduce(flags, reduce_op):  # rank 0 and rank 1 of a two-rank job, rank 1's view of rank 0's flags
        assert reduce_op == "max"
        reduced.append(trainer.global_step)
        return torch.maximum(flags, rank0)

    # rank 0: 0.05 s per step → a check every 20 steps; every 1.5 s of training → saves at 41 and 81
    callback = LastCheckpoint(str(tmp_path), 1.5 / 60, None, sync_every_s=1.0, clock=clock)
    trainer, rank0 = _trainer(rank=0, world_size=2, reduce=reduce), torch.zeros(5, dtype=torch.int64)
    callback.on_train_start(trainer, None)
    _steps(callback, trainer, clock, 90, 0.05)
    assert reduced == [1, 21, 41, 61, 81] and trainer.saved == [41, 81]

    # rank 1: follows rank 0's flags [SIGTERM, SIGUSR1, SIGUSR2, due, steps to the next check], never its own clock
    reduced.clear()
    callback = LastCheckpoint(str(tmp_path), 1 / 60, None, clock=clock)
    trainer = _trainer(rank=1, world_size=2, reduce=reduce)
    callback.on_train_start(trainer, None)
    rank0 = torch.tensor([0, 0, 0, 1, 5])
    _steps(callback, trainer, clock, 1, 100.0)
    rank0 = torch.tensor([0, 0, 0, 0, 5])
    _steps(callback, trainer, clock, 4, 100.0)
    callback._notice(signal.SIGUSR1, None)  # only this rank got it
    with pytest.raises(SIGTERMException):
        _steps(callback, trainer, clock, 1, 100.0)
    assert reduced == [1, 6] and trainer.saved == [1, 6]


def test_val_sample_images_are_saved_by_an_offline_wandb_run(tmp_path, monkeypatch):
    """Offline (no key, no network, never a prompt), wandb writes media inside a table as the word "Image" and
    saves no file (wandb/wandb#4611): the sample panel is logged as a list of images, whose PNGs the offline run
    folder holds for `wandb sync`, and the table keeps text columns only."""
    import json

    import cv2
    import wandb

    from conftest import FAST, compose_train
    from crnn_lit.train import train
    from crnn_lit.training.tracking import finish_wandb
    from runtime_helpers import read_wandb_run

    for name, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "HOME": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    overrides = [*(o for o in FAST if not o.startswith("logger=")), "logger=wandb", "logger.wandb.val_samples=4",
                 "~callbacks.progress_bar"]
    try:
        train(compose_train(overrides, tmp_path))
    finally:
        finish_wandb()
        wandb.teardown()  # stops wandb's service process: the run file is complete only then
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    pngs = sorted((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert len(pngs) == 8  # 4 samples × 2 validations (the epoch's, the best checkpoint's after training)
    sizes = {cv2.imread(str(png), cv2.IMREAD_UNCHANGED).shape for png in pngs}
    assert len(sizes) == 1 and sizes.pop()[0] == 32  # one size: W&B lays the list out as one grid

    history = read_wandb_run(run_dir)["history"]  # the last validation's records
    captions = history["val/sample_images/captions"]
    assert history["val/sample_images/count"] == 4 and len(captions) == 4 and all(" → " in c for c in captions)
    assert all((run_dir / "files" / name).is_file() for name in history["val/sample_images/filenames"])
    table = json.loads((run_dir / "files" / history["val/samples/path"]).read_text())
    assert table["columns"] == ["sample", "label", "prediction", "confidence", "correct"]
    assert [row[0] for row in table["data"]] == [0, 1, 2, 3] and "Image" not in json.dumps(table["data"])
    assert [f"{row[1]} → {row[2]}" for row in table["data"]] == captions
