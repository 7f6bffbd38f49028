"""Which model and decoding become the default reading: every candidate judged on the real_train hold-out (words)
and the line hold-out (a fifth of sroie_val), never a benchmark.

    python bench/choose_reader.py --ckpts A.pt B.pt ... [--lms english_char6 english_receipts_char6] [--out ...]

Each candidate's frame posteriors are computed once per hold-out; greedy and beam + LM over a grid of LMs, LM
weights (α) and length bonuses (β) decode them. The score of a (model, decoding) is the mean of word accuracy and line
accuracy, one reader for both; the best per model is what `checkpoint weights --reading` records with it, and the
best overall is the default. Every tried value is written.

    python bench/choose_reader.py --widths data/pretrained/ppocr_v6_small.onnx --min-widths 320 256 192 128

``--widths``: one model's hold-out accuracy (its recorded decoding and greedy) and its speed (1,000 IIIT5K files
to text, all cores; the benchmark images only time the reading, nothing is scored on them) when narrow crops are
padded to each minimum width instead of the model's own: the input width trades speed for accuracy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from record import write

from crnn_lit.holdout import accuracy, holdout_source, line_holdout_source
from crnn_lit.paths import shared_data_dir
from crnn_lit.reading.recognizer import Recognizer, find_images
from crnn_lit.transcription import decoder as named_decoder

ALPHAS = [0.05, 0.1, 0.2, 0.3, 0.5]
BETAS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]


def min_widths(ckpt: str, widths: list[int], words_source, lines_source) -> dict:
    """Hold-out accuracy and files-to-text speed of ``ckpt`` at each minimum input width."""
    base = Recognizer.from_checkpoint(ckpt, batch_size=32)
    greedy = named_decoder("greedy", base.charset)
    files = [str(p) for p, _ in find_images(str(Path(shared_data_dir()) / "benchmarks" / "iiit5k"))][:1000]
    rows = []
    for width in widths:
        reader = Recognizer(base.backend, base.preprocess.replace(min_width=width), base.decoder, 32, 8192)
        words, lines = reader.source_logits(words_source), reader.source_logits(lines_source)
        start = time.perf_counter()
        reader.read(files)
        rows.append({"min_width": width, "words": round(accuracy(words, reader.decoder), 4),
                     "lines": round(accuracy(lines, reader.decoder, "line"), 4),
                     "words_greedy": round(accuracy(words, greedy), 4),
                     "lines_greedy": round(accuracy(lines, greedy, "line"), 4),
                     "images_per_s": round(len(files) / (time.perf_counter() - start), 1)})
        print(rows[-1], flush=True)
    return {"ckpt": ckpt, "reading": base.decoder.__class__.__name__, "widths": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpts", nargs="+")
    ap.add_argument("--lms", nargs="+", default=["english_char6"], help="LM files or shipped names (data/lm)")
    ap.add_argument("--widths", help="a model whose minimum input width to vary (--min-widths)")
    ap.add_argument("--min-widths", nargs="+", type=int, default=[320, 256, 192, 128])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    words_source, lines_source = holdout_source(), line_holdout_source()
    if args.widths:
        write(args.out or "bench/results/reader_min_width.json",
              min_widths(args.widths, args.min_widths, words_source, lines_source))
        return
    candidates = []
    for ckpt in args.ckpts:
        reader = Recognizer.from_checkpoint(ckpt, "greedy", batch_size=32)
        words, lines = reader.source_logits(words_source), reader.source_logits(lines_source)
        settings = [{"decoder": "greedy"}] + [{"decoder": "beam_lm", "lm": lm, "lm_weight": a, "length_bonus": b}
                                               for lm, a, b in itertools.product(args.lms, ALPHAS, BETAS)]
        tried = []
        for setting in settings:
            decoder = named_decoder(setting["decoder"], reader.charset,
                                    **{k: v for k, v in setting.items() if k != "decoder"})
            word_acc, line_acc = accuracy(words, decoder), accuracy(lines, decoder, "line")
            tried.append({"reading": setting, "words": round(word_acc, 4), "lines": round(line_acc, 4),
                          "score": round((word_acc + line_acc) / 2, 4)})
            print(ckpt, setting, tried[-1]["words"], tried[-1]["lines"], flush=True)
        best = max(tried, key=lambda t: t["score"])  # ties: the first, i.e. greedy, then the first LM, smaller α, β
        candidates.append({"ckpt": ckpt, "best": best, "tried": tried})
    chosen = max(candidates, key=lambda c: c["best"]["score"])
    write(args.out or "bench/results/reader_choice.json", {"holdouts": {"words": len(words_source),
                                                                      "lines": len(lines_source)},
                     "chosen": {"ckpt": chosen["ckpt"], **chosen["best"]}, "candidates": candidates})


if __name__ == "__main__":
    main()
