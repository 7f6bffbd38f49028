"""Calibrate open-vocabulary lexicon decoding (``open_ratio``) on the real_train hold-out — never on a benchmark.

    python bench/calibrate_open_lexicon.py [--ckpt data/pretrained/cpu_scene_text.pt] [--lexicon <90k vocabulary>]

The hold-out is `data=real_finetune`'s validation split (10 % of ../shared/data/real_train by a hash of the
path), which the shipped model never trained on. For each candidate ratio τ the 90k-vocabulary decoder keeps a
lexicon word w only when p(w|y) ≥ τ·p(l′|y); the τ with the best hold-out word accuracy (ties: the smallest) is
written with every tried value to bench/results/open_lexicon.json. Put it in conf/evaluate.yaml
(`lexicon_decoder.open_ratio`) or pass `decoder.open_ratio=<τ>` to predict.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from holdout import accuracy, holdout_logits

from crnn_lit.config import PROJECT_ROOT
from crnn_lit.transcription import GreedyDecoder, LexiconDecoder
from crnn_lit.transcription.lexicon import Lexicon

RATIOS = [0.0, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, math.inf]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(PROJECT_ROOT / "data" / "pretrained" / "cpu_scene_text.pt"))
    ap.add_argument("--lexicon", default=str(PROJECT_ROOT.parent / "shared" / "data" / "lexicons" /
                                             "mjsynth90k_generic_vocabulary.txt"))
    ap.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "open_lexicon.json"))
    args = ap.parse_args()

    loaded, recognized = holdout_logits(args.ckpt)
    lexicon = Lexicon.from_file(args.lexicon)


    greedy = accuracy(recognized, GreedyDecoder(loaded.charset))
    tried = {str(t): accuracy(recognized, LexiconDecoder(loaded.charset, lexicon=lexicon, open_ratio=t)) for t in RATIOS}
    best = max(RATIOS, key=lambda t: (tried[str(t)], -t))
    result = {"ckpt": str(args.ckpt), "holdout_images": sum(len(r.labels) for r in recognized), "greedy_accuracy": greedy,
              "accuracy_by_open_ratio": tried, "chosen_open_ratio": best}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
