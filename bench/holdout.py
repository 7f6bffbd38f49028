"""The real_train hold-out, read by a model: what calibration scripts tune decoders on — never a benchmark.

The hold-out is `data=real_finetune`'s validation split (10 % of ../shared/data/real_train by a hash of the
path); the shipped models never trained on it.
"""

from __future__ import annotations

from hydra.utils import instantiate

from crnn_lit.checkpoint import load_model
from crnn_lit.config import compose_config
from crnn_lit.evaluate import read_source
from crnn_lit.inference import TorchBackend, reading_preprocess, recognize, width_batches
from crnn_lit.metrics import protocol_normalize
from crnn_lit.preprocess import Preprocess


def holdout_logits(ckpt: str, batch_size: int = 64, turn_tall: float | None = None):
    """``(loaded model, list of Recognized batches)`` for every readable hold-out image."""
    loaded = load_model(ckpt)
    source = instantiate(compose_config(["data=real_finetune"]).data.val)
    return loaded, source_logits(loaded, source, batch_size, turn_tall)


def source_logits(loaded, source, batch_size: int = 64, turn_tall: float | None = None):
    """The model's Recognized batches for every readable image of ``source`` (unreadable ones are left out);
    ``turn_tall`` as in conf/predict.yaml."""
    backend = TorchBackend(loaded.model)
    preprocess = Preprocess.from_record(loaded.config)
    prepare = reading_preprocess(backend, preprocess, turn_tall)
    images, keys, labels, _ = read_source(source, prepare)
    batches = width_batches(images, batch_size, keys, labels, output_length=backend.output_length,
                            width_multiple=preprocess.width_multiple)
    return list(recognize(backend, batches))


def accuracy(recognized, decoder) -> float:
    """Word accuracy of ``decoder`` on the recognized hold-out (standard protocol: lowercase, [0-9a-z])."""
    hits = total = 0
    for r in recognized:
        for p, label in zip(decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
            hits += protocol_normalize(p.text) == protocol_normalize(label)
            total += 1
    return hits / total
