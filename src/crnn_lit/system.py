"""CRNNSystem: the thin LightningModule around a plain CRNN — CTC loss, optimizer, metrics, logging."""

from __future__ import annotations

import inspect
import random
import time
from collections import Counter
from collections.abc import Callable

import lightning as L
import numpy as np
import torch

from crnn_lit.charset import Charset
from crnn_lit.checkpoint import CHECKPOINT_KEY, model_record
from crnn_lit.data.batching import Batch
from crnn_lit.metrics import TextMetrics
from crnn_lit.model.crnn import CRNN
from crnn_lit.tracking import ValSamples
from crnn_lit.transcription import Decoder, GreedyDecoder
from crnn_lit.transcription.ctc import ctc_loss

RNG_KEY = "crnn_lit_rng"


class CRNNSystem(L.LightningModule):
    """Trains ``model`` end to end from word labels with loss −Σ log p(l|y) (CTC, blank = 0).

    ``optimizer`` and ``scheduler`` are partials from config (``scheduler`` may be None); a scheduler whose
    constructor takes ``total_steps`` (one-cycle) gets the trainer's estimated step count. Validation decodes
    greedily (lexicon-free) so checkpoint selection never depends on a lexicon; ``decoder`` serves prediction.
    ``model_config`` (backbone + rnn config, input spec) is stored in every checkpoint with the charset, and
    the RNG states with it, so a resumed run draws the same random numbers as an uninterrupted one.
    With a W&B logger attached, the first validation samples of each epoch are logged as a table.
    """

    def __init__(self, model: CRNN, charset: Charset, optimizer: Callable, scheduler: Callable | None,
                 decoder: Callable[[Charset], Decoder], model_config: dict, channels_last: bool = False):
        super().__init__()
        # NHWC convolutions: +18 % training images/s on this CPU (bench/results/train_speed_options_*.json)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.charset = charset
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.decoder = decoder(charset)
        self.val_decoder = GreedyDecoder(charset)
        self.model_config = model_config
        self.val_metrics = TextMetrics(normalize=False)
        self._rejected: Counter = Counter()
        self._epoch_images = 0
        self._epoch_start = 0.0
        self._pad_waste_sum = 0.0
        self._batches = 0
        self._samples: ValSamples | None = None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    def _ctc_loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ctc_loss(logits, batch.targets, batch.input_lengths, batch.target_lengths)

    # --- training --------------------------------------------------------------------------------------
    def on_train_start(self) -> None:
        self._epoch_start = time.perf_counter()  # a mid-epoch resume skips on_train_epoch_start

    def on_train_epoch_start(self) -> None:
        self._rejected.clear()
        self._epoch_images, self._pad_waste_sum, self._batches = 0, 0.0, 0
        self._epoch_start = time.perf_counter()

    def training_step(self, batch: Batch, batch_idx: int):
        self._rejected.update(batch.rejected)
        if not len(batch):  # every sample of this batch was rejected (counted above)
            return None
        loss = self._ctc_loss(self(batch.images), batch)
        self._epoch_images += len(batch)
        self._pad_waste_sum += batch.padding_waste
        self._batches += 1
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=len(batch))
        return loss

    def on_train_epoch_end(self) -> None:
        elapsed = max(time.perf_counter() - self._epoch_start, 1e-9)
        # summed over ranks: the global rate (a DDP rank's own rate times the world size, roughly)
        self.log("train/images_per_sec", self._epoch_images / elapsed, sync_dist=True, reduce_fx="sum")
        self.log("data/padding_waste", self._pad_waste_sum / max(self._batches, 1), sync_dist=True)
        for reason, count in sorted(self._rejected.items()):  # counts of this rank's batches
            self.log(f"data/rejected_{reason}", float(count))
        if self._rejected:
            summary = ", ".join(f"{r}={c}" for r, c in sorted(self._rejected.items()))
            self.print(f"epoch {self.current_epoch}: skipped training samples: {summary}")

    # --- validation ------------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._samples = None if self.trainer.sanity_checking else ValSamples.for_loggers(self.loggers)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        if not len(batch):
            return
        logits = self(batch.images)
        self.log("val/loss", self._ctc_loss(logits, batch), batch_size=len(batch), sync_dist=True)
        predictions = self.val_decoder(logits.float().log_softmax(2), batch.input_lengths)
        self.val_metrics.update([p.text for p in predictions], batch.labels)
        if self._samples is not None and self._samples.wanted:
            self._samples.add(batch.images, batch.widths, batch.labels, predictions)

    def on_validation_epoch_end(self) -> None:
        for name, value in self.val_metrics.compute().items():
            self.log(f"val/{name}", value, prog_bar=name == "acc")
        self.val_metrics.reset()
        if self._samples is not None:
            self._samples.log(self.global_step)
            self._samples = None

    def predict_step(self, batch: Batch, batch_idx: int):
        logits = self(batch.images)
        return self.decoder(logits.float().log_softmax(2), batch.input_lengths)

    # --- optimization ----------------------------------------------------------------------------------
    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        kwargs = {}
        if "total_steps" in inspect.signature(self.scheduler_factory).parameters:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = self.scheduler_factory(optimizer, **kwargs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- checkpoint: charset + model config travel with the weights; RNG states for an exact resume -------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[CHECKPOINT_KEY] = model_record(self.charset, self.model_config)
        checkpoint[RNG_KEY] = _collect_rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if RNG_KEY in checkpoint:
            _set_rng_states(checkpoint[RNG_KEY])


def _collect_rng_states() -> dict:
    """torch, CUDA, numpy and Python RNG states as tensors/ints only, so ``torch.load(weights_only=True)`` reads them."""
    version, mt_key, position, has_gauss, cached = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [version, torch.from_numpy(mt_key.astype(np.int64)), int(position), int(has_gauss), float(cached)],
        "python": [py_version, list(py_state), py_gauss],
    }


def _set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if states.get("cuda") and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])
    version, mt_key, position, has_gauss, cached = states["numpy"]
    np.random.set_state((version, mt_key.numpy().astype(np.uint32), position, has_gauss, cached))
    py_version, py_state, py_gauss = states["python"]
    random.setstate((py_version, tuple(py_state), py_gauss))
