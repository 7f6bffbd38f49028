"""The real_train hold-out, read by a model: what the calibration scripts (bench/calibrate_*.py) tune decoders on
— never a benchmark.

The hold-out is `data=real_finetune`'s validation split (10 % of ../shared/data/real_train by a hash of the
path); the shipped models never trained on it. Reading goes through ``Recognizer`` like every other reader.
"""

from __future__ import annotations

from crnn_lit.metrics import protocol_normalize
from crnn_lit.reading.inference import Recognized
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.transcription import Decoder


def holdout_source():
    """The hold-out as a labelled source (``data=real_finetune``'s ``data.val``, composed from conf/)."""
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    return instantiate(compose_config(["data=real_finetune"]).data.val)


def holdout_logits(ckpt: str, batch_size: int = 64, turn_tall: float | None = None
                   ) -> tuple[Recognizer, list[Recognized]]:
    """``(recognizer, its Recognized batches)`` for every readable hold-out image (``turn_tall`` as
    ``Recognizer``'s); ``recognizer.charset`` builds the decoders to compare."""
    recognizer = Recognizer.from_checkpoint(ckpt, "greedy", batch_size=batch_size, turn_tall=turn_tall)
    return recognizer, recognizer.source_logits(holdout_source())


def accuracy(recognized: list[Recognized], decoder: Decoder) -> float:
    """Word accuracy of ``decoder`` on recognized batches (standard protocol: lowercase, [0-9a-z])."""
    hits = total = 0
    for r in recognized:
        for p, label in zip(decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
            hits += protocol_normalize(p.text) == protocol_normalize(label)
            total += 1
    return hits / total
