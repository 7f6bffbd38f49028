"""Choose the language model's order n, weight α and length bonus β for `decoder=beam_lm` on the real_train
hold-out — never on a benchmark.

    python bench/calibrate_lm.py [--ckpt data/pretrained/cpu_scene_text.pt] [--orders 4 5 6 7]

For each order an LM is built from the shipped word lists (as in data/lm/README.md) into a temporary folder;
every (n, α, β) of the grid decodes the hold-out by LM-fused beam search (beam width as in conf/decoder/beam.yaml).
The best hold-out word accuracy wins (ties: the smaller α, then the smaller β, then the smaller n); every tried
value is written to bench/results/lm_fusion.json. Put the winner in conf/decoder/beam_lm.yaml.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from record import write

from crnn_lit.config import PROJECT_ROOT
from crnn_lit.holdout import accuracy, holdout_logits
from crnn_lit.transcription import BeamDecoder, GreedyDecoder
from crnn_lit.transcription import lm as char_lm

ALPHAS = [0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0]
BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
WORDS = PROJECT_ROOT / "data" / "words"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(PROJECT_ROOT / "data" / "pretrained" / "cpu_scene_text.pt"))
    ap.add_argument("--orders", type=int, nargs="+", default=[4, 5, 6, 7])
    ap.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "lm_fusion.json"))
    args = ap.parse_args()

    reader, recognized = holdout_logits(args.ckpt)


    tried = []
    with tempfile.TemporaryDirectory() as tmp:
        for order in args.orders:
            path = Path(tmp) / f"char{order}.json.gz"
            char_lm.main(["build", str(path), "--words", str(WORDS / "english.txt"),
                          "--frequency", str(WORDS / "frequency" / "english_frequency.tsv"), "--order", str(order)])
            for alpha, beta in itertools.product(ALPHAS, BETAS):
                decoder = BeamDecoder(reader.charset, lm=str(path), lm_weight=alpha, length_bonus=beta)
                tried.append({"order": order, "alpha": alpha, "beta": beta, "accuracy": accuracy(recognized, decoder)})
                print(tried[-1], flush=True)
    best = max(tried, key=lambda t: (t["accuracy"], -t["alpha"], -t["beta"], -t["order"]))
    result = {"ckpt": str(args.ckpt), "holdout_images": sum(len(r.labels) for r in recognized),
              "greedy_accuracy": accuracy(recognized, GreedyDecoder(reader.charset)),
              "beam_accuracy": accuracy(recognized, BeamDecoder(reader.charset)), "chosen": best, "tried": tried}
    write(args.out, result, show={k: v for k, v in result.items() if k != "tried"})


if __name__ == "__main__":
    main()
