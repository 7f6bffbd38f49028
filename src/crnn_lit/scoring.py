"""Scoring readings against labels, one column (benchmark × decoding) at a time: the figures, the predictions file
of every image, the most confident errors kept for the error sheet, and evaluate's tables (``results.md``)."""

from __future__ import annotations

import heapq
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from crnn_lit.metrics import TextMetrics, compare_form
from crnn_lit.reading.inference import Recognized, Timing
from crnn_lit.transcription import Decoder

PROTOCOLS = {False: "lowercase, [0-9a-z], exact match", True: "case-sensitive, [0-9a-zA-Z], exact match"}
LINE_PROTOCOL = "line protocol: upper case, whitespace runs made one space, ends stripped, exact match"


@dataclass
class Column:
    benchmark: str
    lexicon: str  # "none" or the lexicon setting's name (50, 1k, full, 90k, …)
    images: int
    unreadable: int
    accuracy: float
    ned: float
    cer: float
    mean_confidence: float
    images_per_s: float  # network throughput (forward + log-softmax), batched by width
    decode_ms_per_image: float


class ColumnScore:
    """One column's figures, accumulated batch by batch (evaluate keeps no log-probabilities): the metrics,
    predictions/<name>_<lexicon>.tsv written as batches come (unreadable images last), and the ``keep_errors``
    most confident errors (key, label, reading, confidence) with the network's input of each (the error sheet)."""

    def __init__(self, name: str, lexicon: str, decoder: Decoder, per_image, case_sensitive: bool, out_dir: Path,
                 keep_errors: int = 0, protocol: str = "word"):
        self.name, self.lexicon, self.decoder, self.per_image = name, lexicon, decoder, per_image
        self.case_sensitive, self.keep_errors, self.protocol = case_sensitive, keep_errors, protocol
        self.metrics = TextMetrics(normalize=True, case_sensitive=case_sensitive, protocol=protocol)
        self.read, self.confidence_sum, self.decode_s = 0, 0.0, 0.0
        self.errors: list[tuple[str, str, str, float]] = []
        self.error_images: dict[str, torch.Tensor] = {}
        (out_dir / "predictions").mkdir(parents=True, exist_ok=True)
        self.file = open(out_dir / "predictions" / f"{name}_{lexicon}.tsv", "w", encoding="utf-8")  # noqa: SIM115
        self.file.write("key\tlabel\tprediction\tconfidence\tcorrect\n")

    def add(self, r: Recognized, images: Mapping[str, torch.Tensor]) -> None:
        """Decode one batch; ``images``: the network inputs of its chunk, by key (for the errors kept)."""
        start = time.perf_counter()
        lexicons = self.per_image.lists_for(r.keys) if self.per_image is not None else None
        predictions = self.decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)
        self.metrics.update([p.text for p in predictions], r.labels)
        rows, errors = [], []
        for key, label, p in zip(r.keys, r.labels, predictions):
            correct = (compare_form(p.text, self.protocol, self.case_sensitive)
                       == compare_form(label, self.protocol, self.case_sensitive))
            rows.append(f"{key}\t{label}\t{p.text}\t{p.confidence:.4f}\t{int(correct)}\n")
            self.confidence_sum += p.confidence
            if not correct and self.keep_errors:
                errors.append((key, label, p.text, p.confidence))
        self.read += len(predictions)
        self.decode_s += time.perf_counter() - start
        self.file.writelines(rows)
        if errors:  # the most confident first; among equals, the first seen
            self.errors = heapq.nlargest(self.keep_errors, self.errors + errors, key=lambda e: e[3])
            self.error_images = {e[0]: self.error_images[e[0]] if e[0] in self.error_images else images[e[0]]
                                 for e in self.errors}

    def finish(self, unreadable: list[tuple[str, str, str]], timing: Timing) -> Column:
        """The column, counting ``unreadable`` images as errors (nothing could be read)."""
        if unreadable:
            self.metrics.update([""] * len(unreadable), [label for _, label, _ in unreadable])
            self.file.writelines(f"{key}\t{label}\t\t0.0000\t0\t# unreadable: {reason}\n"
                                 for key, label, reason in unreadable)
        self.file.close()
        values = {k: float(v) for k, v in self.metrics.compute().items()}
        return Column(self.name, self.lexicon, int(self.metrics.total), len(unreadable), values["acc"], values["ned"],
                      values["cer"], self.confidence_sum / max(self.read, 1), timing.images_per_s,
                      1000 * self.decode_s / max(self.read, 1))


def markdown(columns: list[Column], combined: float | None, ckpt: str, protocol: str = PROTOCOLS[False],
             unit: str = "Word") -> str:
    head = " | ".join(f"{c.benchmark} {c.lexicon if c.lexicon != 'none' else ''}".strip() for c in columns)
    acc = " | ".join(f"{100 * c.accuracy:.1f}" for c in columns)
    lines = [f"{unit} accuracy (%) of `{ckpt}` — {protocol}; lexicon column = lexicon size/name",
             "", f"| model | {head} | combined |", "|---" * (len(columns) + 2) + "|",
             f"| crnn_lit | {acc} | {'' if combined is None else f'{100 * combined:.1f}'} |", "",
             "| benchmark | lexicon | images | unreadable | accuracy | 1-NED | CER | mean conf. | images/s | decode ms/img |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {c.benchmark} | {c.lexicon} | {c.images} | {c.unreadable} | {100 * c.accuracy:.2f} | {c.ned:.4f} | "
              f"{c.cer:.4f} | {c.mean_confidence:.3f} | {c.images_per_s:.0f} | {c.decode_ms_per_image:.2f} |"
              for c in columns]
    return "\n".join(lines) + "\n"
