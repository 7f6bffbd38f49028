"""From a raw source sample to a training item: label policy → augment → resize → tensor.

Samples that cannot be used are not errors: they come back as ``Rejected`` with a reason, the collate function
drops them and counts the reasons, and ``crnn_lit.training.callbacks.EpochStats`` logs the counts once per epoch. Nothing
is silently lost and nothing crashes a training epoch. The rules live in ``LabelPolicy``, which
``python -m crnn_lit.data inspect`` applies too, so it reports exactly what training would filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from crnn_lit.charset import Charset
from crnn_lit.data.sample import BadSample, Sample
from crnn_lit.data.sources.base import sizes_of
from crnn_lit.preprocess import Preprocess, to_channels
from crnn_lit.transcription.ctc import min_frames

# sources up to this many samples keep their widths in memory (4 bytes each); larger ones are virtual
_MAX_KEPT_WIDTHS = 100_000_000


@dataclass
class Item:
    image: torch.Tensor  # C×H×W, float in [-1, 1]
    target: list[int]
    label: str  # the normalized label (what the model is asked to read)
    key: str


@dataclass
class Rejected:
    reason: str  # short reason name, used as a counter key
    key: str
    detail: str = ""

    @classmethod
    def of(cls, err: BadSample) -> Rejected:
        """A sample its source could not produce."""
        return cls(err.reason, err.key, str(err))


class LabelPolicy:
    """Which samples training uses, and why not the others: the one copy of the rules.

    ``check`` gives the label to learn (``charset.normalize``: NFKC, case fold, out-of-charset characters per
    ``charset.oov``) or a ``Rejected``: ``empty_label`` (blank, or nothing left once ``oov: remove`` took the
    characters outside the charset), ``out_of_charset`` (``oov: drop``), ``oov_space`` (``oov: drop``, and the
    only characters outside are the spaces of a line: a word charset; ``charset=printable_space`` reads lines), ``bad_image`` (not a uint8 image of at
    least 2×2 pixels; skipped when the image is not decoded), ``too_long`` (CTC needs ``min_frames(label)``
    frames and the network gives ``output_length(width)`` for an image ``width`` pixels wide at its input height;
    ``zero_infinity`` would only hide such labels).
    """

    def __init__(self, charset: Charset, output_length: Callable[[int], int]):
        self.charset = charset
        self.output_length = output_length

    def check(self, sample: Sample, width: int | None = None) -> str | Rejected:
        """The normalized label of ``sample`` or why it is rejected; ``width`` None leaves the frame count to
        ``fits`` (training knows the width only after augmentation, which may change it)."""
        label = self.charset.normalize(sample.label)
        if label is None:
            if not sample.label.strip():
                return Rejected("empty_label", sample.key, repr(sample.label))
            if self.charset.oov == "remove":  # every character removed: nothing left to learn
                return Rejected("empty_label", sample.key, f"{sample.label!r} (no character in the charset)")
            if self.charset.normalize(sample.label.replace(" ", "")) is not None:  # only its spaces are outside
                return Rejected("oov_space", sample.key, f"{sample.label!r} (charset {self.charset.name or 'custom'} "
                                "has no space: a line charset such as printable_space reads it)")
            return Rejected("out_of_charset", sample.key, repr(sample.label))
        image = sample.image
        if image is not None and (image.ndim not in (2, 3) or min(image.shape[:2]) < 2 or image.dtype != np.uint8):
            return Rejected("bad_image", sample.key, f"shape {image.shape}, dtype {image.dtype}")
        if width is not None:
            return self.fits(sample.key, label, width)
        return label

    def fits(self, key: str, label: str, width: int) -> str | Rejected:
        """``label`` if an image ``width`` pixels wide gives CTC enough frames for it, else ``too_long``."""
        if min_frames(label) > self.output_length(width):
            return Rejected("too_long", key, f"{label!r} at width {width}")
        return label


def seed32(*entropy: int) -> int:
    """A 32-bit seed mixed from integers (numpy's SeedSequence: nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence([int(e) % 2**63 for e in entropy]).generate_state(1)[0])


class PreparedDataset(Dataset):
    """Wraps a source (any map-style dataset of ``Sample``) with the label policy and image pipeline.

    Order: ``LabelPolicy.check`` → channels → resize to ``preprocess.height`` → ``augment`` (training only) →
    ``LabelPolicy.fits`` at the final width → tensor. ``output_length`` maps an input width to the model's frame
    count T. Rejection reasons: the policy's, ``augment_error``, plus whatever the source raises as ``BadSample``
    (``unreadable``, ``empty_file``, ``missing_file``, ``missing_key``, ``not_utf8``, …).
    """

    def __init__(self, source, charset: Charset, preprocess: Preprocess,
                 output_length: Callable[[int], int], augment: Callable | None = None, seed: int = 0):
        self.source = source
        self.charset = charset
        self.policy = LabelPolicy(charset, output_length)
        self.preprocess = preprocess
        self.augment = augment
        self.seed = seed
        self._widths: np.ndarray | None = None  # per index, -1 until computed (see ``widths``)

    def __len__(self) -> int:
        return len(self.source)

    def width(self, index: int) -> int:
        """Resized width of sample ``index`` without decoding it (sources know their image sizes cheaply)."""
        return int(self.widths(np.array([index]))[0])

    def widths(self, indices: np.ndarray) -> np.ndarray:
        """``width`` of many samples (an epoch's, for the batch sampler). Finite sources' widths are kept once
        computed, so later epochs are one array lookup; virtual index spaces (the renderer's 10^9) are asked
        anew each time."""
        indices = np.asarray(indices, dtype=np.int64)
        if len(self) > _MAX_KEPT_WIDTHS:
            return self.preprocess.resize.widths_for(sizes_of(self.source, indices))
        if self._widths is None and len(indices) >= len(self):  # an epoch as long as the source: all, in order
            self._widths = self.preprocess.resize.widths_for(sizes_of(self.source, np.arange(len(self))))
        elif self._widths is None:
            self._widths = np.full(len(self), -1, dtype=np.int32)
        widths = self._widths[indices]
        todo = widths < 0
        if todo.any():
            self._widths[indices[todo]] = self.preprocess.resize.widths_for(sizes_of(self.source, indices[todo]))
            widths = self._widths[indices]
        return widths

    def __getitems__(self, indices: list[int]) -> list[Item | Rejected]:
        """A batch (DataLoader calls this with a batch sampler). The augmentation is seeded from ``seed`` and the
        batch's indices: a pure function of the batch, whichever worker draws it and whenever (exact resume)."""
        if self.augment is not None and hasattr(self.augment, "set_random_seed"):
            self.augment.set_random_seed(seed32(self.seed, *indices))
        return [self[i] for i in indices]

    def __getitem__(self, index: int) -> Item | Rejected:
        try:
            sample: Sample = self.source[index]
        except BadSample as err:
            return Rejected.of(err)
        label = self.policy.check(sample)
        if isinstance(label, Rejected):
            return label
        image = self.preprocess.resize(to_channels(sample.image, self.preprocess.channels))
        if self.augment is not None:
            # at the network's height, so one pipeline means the same thing for 32-px synthetic crops and
            # 600-px photos (and costs the same)
            try:
                image = self.augment(image=image)["image"]
            except Exception as err:  # noqa: BLE001 — a broken transform must not end the epoch: count it
                return Rejected("augment_error", sample.key, f"{type(err).__name__}: {err}")
            image = self.preprocess.resize(image)  # a no-op unless a transform changed the size
        tensor = self.preprocess.to_input(image)
        label = self.policy.fits(sample.key, label, tensor.shape[-1])
        if isinstance(label, Rejected):
            return label
        return Item(tensor, self.charset.encode(label), label, sample.key)
