"""How much of the real_train hold-out repeats the scenes training saw: crop-level split against a scene split.

    python bench/holdout_scenes.py    → bench/results/holdout_scenes.json

For `data=real_finetune`'s hold-out as configured (crops held out one by one) and with `data.mix.holdout_group`
set to SCENES (IC15 by blocks of 10 consecutive crops, IIIT5K and SVT by source photo): per set, how many
hold-out crops there are and how many read a word that some training crop reads; and, for IC15, how many have
the same word on a training crop at most 5 numbers away (the same shop front in a neighbouring frame).
Labels only: no model, no image is read.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from hydra.utils import instantiate
from record import write

from crnn_lit.config import compose_config
from crnn_lit.metrics import protocol_normalize

OUT = Path(__file__).resolve().parent / "results" / "holdout_scenes.json"
SCENES = r"ic15:images/word_(\d*?)\d\.png|iiit5k:images/(\d+)_\d+\.png|svt:images/(\d+_\d+)_\d+\.png"
NEAR = 5


def split_stats(overrides: list[str]) -> dict:
    cfg = compose_config(["data=real_finetune", *overrides])
    train, val = instantiate(cfg.data.train.sources.real), instantiate(cfg.data.val)
    words = {protocol_normalize(train.label(i)) for i in range(len(train))}
    frame = {}  # IC15 crop number -> word, training side
    for i in range(len(train)):
        if m := re.fullmatch(r"ic15:images/word_(\d+)\.png", train.key(i)):
            frame[int(m.group(1))] = protocol_normalize(train.label(i))
    crops, seen, near = Counter(), Counter(), 0
    for i in range(len(val)):
        key, word = val.key(i), protocol_normalize(val.label(i))
        name = key.split(":")[0]
        crops[name] += 1
        seen[name] += word in words
        if m := re.fullmatch(r"ic15:images/word_(\d+)\.png", key):
            n = int(m.group(1))
            near += any(frame.get(n + d) == word for d in range(-NEAR, NEAR + 1) if d)
    return {"train_crops": len(train), "holdout_crops": dict(crops), "holdout_word_seen_in_training": dict(seen),
            f"ic15_same_word_within_{NEAR}_crops": near}


def main() -> None:
    result = {"scene_pattern": SCENES,
              "crop_split": split_stats([]), "scene_split": split_stats([f"data.mix.holdout_group='{SCENES}'"])}
    write(OUT, result)


if __name__ == "__main__":
    main()
