"""Which model and decoding become the default reading: every candidate judged on the real_train hold-out (words)
and the line hold-out (a fifth of sroie_val), never a benchmark.

    python bench/choose_reader.py --ckpts A.pt B.pt ... [--out bench/results/reader_choice.json]

Each candidate's frame posteriors are computed once per hold-out; greedy and beam + LM over a grid of LM weights
(α) and length bonuses (β) decode them. The score of a (model, decoding) is the mean of word accuracy and line
accuracy, one reader for both; the best per model is what `checkpoint weights --reading` records with it, and the
best overall is the default. Every tried value is written.
"""

from __future__ import annotations

import argparse
import itertools
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

from record import write

from crnn_lit.holdout import accuracy, holdout_source, line_holdout_source
from crnn_lit.reading.recognizer import Recognizer
from crnn_lit.transcription import decoder as named_decoder

ALPHAS = [0.05, 0.1, 0.2, 0.3, 0.5]
BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpts", nargs="+", required=True)
    ap.add_argument("--out", default="bench/results/reader_choice.json")
    args = ap.parse_args()
    words_source, lines_source = holdout_source(), line_holdout_source()
    candidates = []
    for ckpt in args.ckpts:
        reader = Recognizer.from_checkpoint(ckpt, "greedy", batch_size=32)
        words, lines = reader.source_logits(words_source), reader.source_logits(lines_source)
        settings = [{"decoder": "greedy"}] + [{"decoder": "beam_lm", "lm_weight": a, "length_bonus": b}
                                               for a, b in itertools.product(ALPHAS, BETAS)]
        tried = []
        for setting in settings:
            decoder = named_decoder(setting["decoder"], reader.charset,
                                    **{k: v for k, v in setting.items() if k != "decoder"})
            word_acc, line_acc = accuracy(words, decoder), accuracy(lines, decoder, "line")
            tried.append({"reading": setting, "words": round(word_acc, 4), "lines": round(line_acc, 4),
                          "score": round((word_acc + line_acc) / 2, 4)})
            print(ckpt, setting, tried[-1]["words"], tried[-1]["lines"], flush=True)
        best = max(tried, key=lambda t: t["score"])  # ties: the first, i.e. greedy, then the smaller α, β
        candidates.append({"ckpt": ckpt, "best": best, "tried": tried})
    chosen = max(candidates, key=lambda c: c["best"]["score"])
    write(args.out, {"holdouts": {"words": len(words_source), "lines": len(lines_source)},
                     "chosen": {"ckpt": chosen["ckpt"], **chosen["best"]}, "candidates": candidates})


if __name__ == "__main__":
    main()
