"""How tall a crop must be before it is also read turned ±90° (`turn_tall`), chosen on the real_train hold-out.

    python bench/calibrate_turn_tall.py [ckpt …]    (default: the shipped cpu_scene_text.pt)

For each model and each `turn_tall` (off, 1.0, 1.2, 1.5, 2.0): greedy word accuracy on the 686 hold-out crops
(crnn_lit.holdout, standard protocol). Never run on a benchmark. Writes
bench/results/turn_tall.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from record import write

from crnn_lit.holdout import accuracy, holdout_logits
from crnn_lit.transcription.greedy import GreedyDecoder

OUT = Path(__file__).resolve().parent / "results" / "turn_tall.json"
SETTINGS = [None, 1.0, 1.2, 1.5, 2.0]


def main(ckpts: list[str]) -> None:
    torch.set_num_threads(1)
    records = []
    for ckpt in ckpts:
        for turn_tall in SETTINGS:
            reader, recognized = holdout_logits(ckpt, turn_tall=turn_tall)
            acc = accuracy(recognized, GreedyDecoder(reader.charset))
            records.append({"ckpt": ckpt, "turn_tall": turn_tall, "holdout_greedy": round(100 * acc, 2),
                            "crops": sum(len(r.keys) for r in recognized)})
            print(json.dumps(records[-1]))
    write(OUT, {"threads": 1, "records": records}, show=False)


if __name__ == "__main__":
    main(sys.argv[1:] or ["data/pretrained/cpu_scene_text.pt"])
