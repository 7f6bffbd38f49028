"""CRNNSystem: the thin LightningModule around a plain CRNN — CTC loss, optimizer, metrics."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import lightning as L
import torch
from torchmetrics import MeanMetric

from crnn_lit.charset import Charset
from crnn_lit.checkpoint import CHECKPOINT_KEY, model_record
from crnn_lit.data.batching import Batch
from crnn_lit.metrics import TextMetrics
from crnn_lit.model.crnn import CRNN
from crnn_lit.transcription import GreedyDecoder
from crnn_lit.transcription.ctc import CaseFold, ctc_loss


class CRNNSystem(L.LightningModule):
    """Trains ``model`` from word labels with CTC, −Σ log p(l|y) (blank 0). ``optimizer``/``scheduler``: partials
    from config (one-cycle's ``total_steps``: ``callbacks.TotalSteps``). Validation decodes greedily, so checkpoint
    selection never depends on a lexicon. Checkpoints carry the charset and ``model_config`` (backbone, rnn, input
    spec); counters, RNG states and sample tables are in ``crnn_lit.training.callbacks``."""

    def __init__(self, model: CRNN, charset: Charset, optimizer: Callable, scheduler: Callable | None,
                 model_config: dict, channels_last: bool = False, case_fold: bool = False):
        super().__init__()
        # NHWC convolutions: +18 % training images/s on this CPU (bench/results/train_speed_options_*.json)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.charset = charset
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_decoder = GreedyDecoder(charset)
        # labels with no lower-case letter scored case-insensitively (a cased charset; see CaseFold)
        self.case_fold = CaseFold(charset.chars) if case_fold else None
        self.model_config = model_config
        self.val_metrics = TextMetrics(normalize=False)
        self.val_loss = MeanMetric()  # synced in on_validation_epoch_end, not per step (see there)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images.contiguous(memory_format=self.memory_format))

    def loss(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ctc_loss(logits, batch.targets, batch.input_lengths, batch.target_lengths, self.case_fold, batch.labels)

    def training_step(self, batch: Batch, batch_idx: int):
        if not len(batch):  # every sample of this batch was rejected (EpochStats counts them)
            return self.no_sample_loss()
        loss = self.loss(self(batch.images), batch)
        # No host sync in the step: a loss shown with prog_bar=True is read (.item()) every step, so the bar shows it
        # only when it refreshes (callbacks.ProgressBar); the learning rate, a Python float that Lightning would
        # copy to the device, is logged as a CPU tensor.
        self.log("train/loss", loss, batch_size=len(batch))
        self.log("train/lr", torch.tensor(self.optimizers().param_groups[0]["lr"]), batch_size=len(batch))
        return loss

    def no_sample_loss(self) -> torch.Tensor:
        """Loss 0 for a batch with no usable sample, from a forward of zero images. Returning None would skip the
        step, which Lightning refuses under DDP (the other ranks would wait in the gradient all-reduce); this keeps
        every rank's collectives the same: each parameter gets a zero gradient, SyncBatchNorm gathers an empty count,
        running BN statistics stay as they are. (Refilling at collate time may find only more rejects: a width pool
        of narrow crops with long labels.)"""
        spec = self.model_config
        return self(torch.zeros(0, spec["channels"], spec["height"], spec["min_width"], device=self.device)).sum()

    def validation_step(self, batch: Batch, batch_idx: int):
        if not len(batch):  # every sample rejected (the label policy counts them): nothing to score here
            return None
        logits = self(batch.images)
        self.val_loss.update(self.loss(logits, batch), weight=len(batch))
        predictions = self.val_decoder(logits.float().log_softmax(2), batch.input_lengths)
        texts = [p.text for p in predictions]
        if self.case_fold is not None:  # scored as trained: a label with no lower-case letter ignores case
            texts = [t if self.case_fold.trusts(label) else t.upper() for t, label in zip(texts, batch.labels)]
        self.val_metrics.update(texts, batch.labels)
        return predictions  # for callbacks (ValSampleTable)

    def on_validation_epoch_end(self) -> None:
        """Every rank syncs here, once, the same collectives in the same order, whatever its batches held. (A
        per-step ``self.log(sync_dist=True)`` is reduced only by the ranks that logged it: a rank whose validation
        batches were all rejected waited in another collective forever — issue #33.) The metrics hold sums only,
        so a rank that scored nothing adds zeros."""
        with warnings.catch_warnings():  # a rank that scored nothing: torchmetrics warns of compute before update
            warnings.filterwarnings("ignore", message=".*compute.*before.*update", category=UserWarning)
            metrics, loss = self.val_metrics.compute(), self.val_loss.compute()
        if torch.isfinite(loss):  # NaN only when no rank scored a sample (0 / 0): nothing to report
            self.log("val/loss", loss)
        for name, value in metrics.items():
            self.log(f"val/{name}", value, prog_bar=name == "acc")
        self.val_metrics.reset()
        self.val_loss.reset()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:  # the model travels with its charset and config
        checkpoint[CHECKPOINT_KEY] = model_record(self.charset, self.model_config)
