"""TextDataModule: height-normalized, variable-width batches from any sources (renderer, Synth90k, …)."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from torch.utils.data import DataLoader

from crnn_lit.charset import Charset
from crnn_lit.data.batching import Collate, EpochSampler, WidthBatchSampler
from crnn_lit.data.dataset import PreparedDataset
from crnn_lit.data.transforms import Resize, WidthPolicy


class TextDataModule(L.LightningDataModule):
    """Training and validation loaders for CTC recognition.

    ``train``/``val`` are map-style sources of ``Sample`` offering ``size(i) -> (w, h)``. ``charset`` and
    ``output_length`` come from the model (the train entry point passes them), so the label policy and the
    too-long filter always match the network being trained. ``samples_per_epoch`` draws that many random
    training indices each epoch (required for the renderer's virtual index space; ``None`` = one pass).
    ``root`` is where file-based sources read from (source configs interpolate it); kept for messages.
    """

    def __init__(self, train, val, charset: Charset, output_length: Callable[[int], int], *, height: int,
                 channels: int, min_width: int, max_width: int, width_policy: WidthPolicy, fixed_width: int,
                 batch_size: int, eval_batch_size: int, num_workers: int, samples_per_epoch: int | None,
                 seed: int, augment: Callable | None = None, pool_batches: int = 50, root: str | None = None):
        super().__init__()
        resize = Resize(height, min_width, max_width, width_policy, fixed_width)
        self.train_set = PreparedDataset(train, charset, resize, channels, output_length, augment)
        self.val_set = PreparedDataset(val, charset, resize, channels, output_length, None)
        self.collate = Collate(output_length)
        self.width_policy = width_policy
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.pool_batches = pool_batches
        self.root = root

    def _loader(self, dataset: PreparedDataset, sampler: WidthBatchSampler) -> DataLoader:
        return DataLoader(
            dataset, batch_sampler=sampler, collate_fn=self.collate, num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0, pin_memory=False,
        )

    def train_dataloader(self) -> DataLoader:
        sampler = EpochSampler(len(self.train_set), shuffle=True, seed=self.seed, num_samples=self.samples_per_epoch)
        width = self.train_set.width if self.width_policy == "bucketed" else None
        batches = WidthBatchSampler(sampler, self.batch_size, width, self.pool_batches, drop_last=True)
        return self._loader(self.train_set, batches)

    def val_dataloader(self) -> DataLoader:
        width = self.val_set.width if self.width_policy != "fixed" else None
        batches = WidthBatchSampler(EpochSampler(len(self.val_set), shuffle=False), self.eval_batch_size, width)
        return self._loader(self.val_set, batches)
