"""Calibrate open-vocabulary lexicon decoding (``open_ratio``) on the real_train hold-out — never on a benchmark.

    python bench/calibrate_open_lexicon.py [--ckpt data/pretrained/cpu_scene_text.pt] [--lexicon <90k vocabulary>]
        [--rule fused|ratio] [--real-train ../shared/data/real_train]

The hold-out is `data=real_finetune`'s validation split (10 % of ../shared/data/real_train by a hash of the
path), which the shipped model never trained on. For each candidate ratio τ the 90k-vocabulary decoder keeps a
lexicon word w only when it beats the lexicon-free reading l′ by τ: under the ``fused`` rule (the default, what
conf/evaluate.yaml uses) log p(w|y) + α·log P_LM(w) + β·|w| ≥ log τ + the same for l′, with beam+LM's α, β and
LM (conf/decoder/beam_lm.yaml); under ``ratio`` p(w|y) ≥ τ·p(l′|y). The τ with the best hold-out word accuracy
(ties: the smallest) is written with every tried value to bench/results/open_lexicon.json. Put it in
conf/evaluate.yaml (`lexicon_decoder.open_ratio`) or pass `decoder.open_ratio=<τ>` to predict.

``--real-train <folder>`` scores all of real_train instead (its iiit5k/svt/ic15 subsets, each reported): only
meaningful for a model that never trained on it (synthetic_only.pt) — how the two rules compare, not a τ to ship.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from record import write

from crnn_lit.config import PROJECT_ROOT
from crnn_lit.data.sources import open_source
from crnn_lit.holdout import accuracy, holdout_logits
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.transcription import GreedyDecoder, LexiconDecoder
from crnn_lit.transcription.lexicon import Lexicon
from crnn_lit.transcription.presets import decoder_settings

RATIOS = [0.0, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0, math.inf]


def calibrate(charset, recognized, lexicon: Lexicon, fusion: dict) -> dict:
    """Accuracy by τ (and greedy/strict) of the open-vocabulary decoder on ``recognized``; the best τ."""
    tried = {str(t): accuracy(recognized, LexiconDecoder(charset, lexicon=lexicon, open_ratio=t, **fusion))
             for t in RATIOS}
    best = max(RATIOS, key=lambda t: (tried[str(t)], -t))
    return {"images": sum(len(r.labels) for r in recognized), "greedy_accuracy": accuracy(recognized, GreedyDecoder(charset)),
            "accuracy_by_open_ratio": tried, "chosen_open_ratio": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(PROJECT_ROOT / "data" / "pretrained" / "cpu_scene_text.pt"))
    ap.add_argument("--lexicon", default=str(PROJECT_ROOT.parent / "shared" / "data" / "lexicons" /
                                             "mjsynth90k_generic_vocabulary.txt"))
    ap.add_argument("--rule", choices=("fused", "ratio"), default="fused")
    ap.add_argument("--real-train", default=None, help="score this real_train folder's subsets, not the hold-out")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "open_lexicon.json"))
    args = ap.parse_args()

    beam_lm = decoder_settings("beam_lm")  # α, β and the LM: one copy
    fusion = ({k: beam_lm[k] for k in ("lm", "lm_weight", "length_bonus")}
              if args.rule == "fused" else {})
    lexicon = Lexicon.from_file(args.lexicon)
    result = {"ckpt": str(args.ckpt), "rule": args.rule, **fusion}
    if args.real_train is None:
        reader, recognized = holdout_logits(args.ckpt)
        result["holdout"] = calibrate(reader.charset, recognized, lexicon, fusion)
    else:
        reader, root = Recognizer.from_checkpoint(args.ckpt, "greedy"), Path(args.real_train)
        for sub in sorted(p.name for p in root.iterdir() if (p / "labels.tsv").is_file()):
            recognized = reader.source_logits(open_source(root / sub, "folder", split="test"))
            result[f"real_train/{sub}"] = calibrate(reader.charset, recognized, lexicon, fusion)
    write(args.out, result)


if __name__ == "__main__":
    main()
