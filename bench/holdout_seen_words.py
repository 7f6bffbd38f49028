"""How much of the real_train hold-out a model reads from words it trained on: accuracy on "seen" and "new" words.

    python bench/holdout_seen_words.py <ckpt> [<ckpt> ...]

The hold-out (`data=real_finetune`'s validation split, 10 % of ../shared/data/real_train by a hash of the path)
shares no image with training, but it shares words — and IC15's crops come from video-like sequences of the same
shop fronts, so a "seen" word is often the same sign photographed again. For each model this prints greedy
accuracy per subset, split by whether the crop's label (standard protocol) occurs among the real_train crops the
models trained on. A model rendered-only (synthetic_only.pt) shows how much easier the seen words are by
themselves; what a model gains beyond that on seen words is what more epochs of real_train buy on the hold-out
and not on other data.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from hydra.utils import instantiate

from crnn_lit.config import compose_config
from crnn_lit.holdout import holdout_logits
from crnn_lit.metrics import protocol_normalize
from crnn_lit.transcription import GreedyDecoder


def training_words() -> set[str]:
    """The protocol-normalized labels of the real_train crops on the training side of the hold-out split (the
    data config's own HoldoutSplit, so the split rule is not written twice)."""
    real = instantiate(compose_config(["data=real_finetune"]).data.train.sources.real)
    return {protocol_normalize(real.label(i)) for i in range(len(real))}


def main() -> None:
    seen_words = training_words()
    for ckpt in sys.argv[1:]:
        reader, recognized = holdout_logits(ckpt)
        decoder, hits, total = GreedyDecoder(reader.charset), Counter(), Counter()
        for r in recognized:
            for key, p, label in zip(r.keys, decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
                label = protocol_normalize(label)
                group = (key.split(":")[0], "seen" if label in seen_words else "new")
                total[group] += 1
                hits[group] += protocol_normalize(p.text) == label
        cells = ", ".join(f"{s}/{k} {100 * hits[s, k] / total[s, k]:.1f} % of {total[s, k]}" for s, k in sorted(total))
        print(f"{Path(ckpt).name}: all {100 * sum(hits.values()) / sum(total.values()):.1f} % | {cells}")


if __name__ == "__main__":
    main()
