"""The real_train hold-out, read by a model: what decoders and readers are chosen on (bench/choose_reader.py,
the calibrations recorded in bench/results/) — never a benchmark. For lines, the fifth of sroie_val that
data=words_and_lines validates on.

The hold-out is `data=real_finetune`'s validation split (10 % of ../shared/data/real_train by a hash of the
path); the shipped models never trained on it. Reading goes through ``Recognizer`` like every other reader.
"""

from __future__ import annotations

from crnn_lit.metrics import compare_form
from crnn_lit.reading.inference import Recognized
from crnn_lit.transcription import Decoder


def _validation(data: str):
    """``data=<data>``'s validation source, composed from conf/ (its split, never a benchmark)."""
    from hydra.utils import instantiate

    from crnn_lit.config import compose_config

    return instantiate(compose_config([f"data={data}"]).data.val)


def holdout_source():
    """The hold-out as a labelled source (``data=real_finetune``'s ``data.val``)."""
    return _validation("real_finetune")


def line_holdout_source():
    """The line hold-out: ``data=words_and_lines``'s validation lines (a fifth of sroie_val by a hash of the path;
    sroie_val is for evaluation and choosing, never training)."""
    val = _validation("words_and_lines")
    return val.sources[val.names.index("lines")]


def accuracy(recognized: list[Recognized], decoder: Decoder, protocol: str = "word") -> float:
    """Accuracy of ``decoder`` on recognized batches under ``protocol``: word (lowercase, [0-9a-z]) or line
    (upper case, whitespace runs one space, exact match)."""
    hits = total = 0
    for r in recognized:
        for p, label in zip(decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
            hits += compare_form(p.text, protocol) == compare_form(label, protocol)
            total += 1
    return hits / total
