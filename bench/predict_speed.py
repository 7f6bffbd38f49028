"""Images/s of the default reading as `python -m crnn_lit.predict inputs=<folder>` gives it: image files decoded,
preprocessed, width-batched, read by the default model and decoded by the default decoder, on all the machine's
cores (torch's default thread count).

    python bench/predict_speed.py [--data ../shared/data/benchmarks/iiit5k] [--decoders beam_lm greedy] [--rounds 2]

Measured in one process after the model is loaded (a command's start-up, ≈ 3 s of imports, is not per image).
Each decoder is read ``--rounds`` times; the first round also pays the LM's loading and the kernels' first use.
Issue #27 asks for ≥ 150 images/s from the default on this machine's two cores: run it on an otherwise idle
machine (the record keeps the load average).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from record import write

from crnn_lit.paths import shared_data_dir
from crnn_lit.reading.inference import bound_kernel_cache
from crnn_lit.reading.recognizer import Recognizer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(shared_data_dir()) / "benchmarks" / "iiit5k"))
    ap.add_argument("--decoders", nargs="+", default=["beam_lm", "greedy"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default="bench/results/predict_speed.json")
    args = ap.parse_args()
    bound_kernel_cache()  # as predict does
    result = {"data": args.data, "threads": torch.get_num_threads(), "decoders": {}}
    for name in args.decoders:
        start = time.perf_counter()
        reader = Recognizer.from_pretrained(decoder=name)  # every other setting is the default
        load_s, rounds = time.perf_counter() - start, []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            predictions = reader.read(args.data)
            rounds.append(round(len(predictions) / (time.perf_counter() - t0), 1))
        result["decoders"][name] = {"images": len(predictions), "images_per_s_by_round": rounds,
                                    "model_and_decoder_load_s": round(load_s, 2),
                                    "unreadable": sum(p.error is not None for p in predictions)}
    write(args.out, {"command": "python bench/predict_speed.py", **result})


if __name__ == "__main__":
    main()
