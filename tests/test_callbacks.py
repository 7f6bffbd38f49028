"""crnn_lit.callbacks on their own (the training runs in test_train/test_scaling/test_data_pipeline use them all)."""

from __future__ import annotations

import functools
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from crnn_lit.callbacks import EpochStats, RngState, TotalSteps


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
