"""Images/s of the default reading as `python -m crnn_lit.predict inputs=<folder>` gives it: image files decoded,
preprocessed, width-batched, read by the default model and decoded by the default decoder, with the default thread
policy (``threads=None``: the cores other processes leave free, ``crnn_lit.reading.threads``).

    python bench/predict_speed.py [--data ../shared/data/benchmarks/iiit5k] [--decoders model greedy] [--rounds 2]
        [--ckpt candidate.pt|.onnx]
    env -u OMP_NUM_THREADS python bench/predict_speed.py --threads 1 2 auto --busy 0 1 --limit 1000 \
        --out bench/results/reading_threads.json

Measured in one process after the model is loaded (a command's start-up, ≈ 3 s of imports, is not per image).
Each decoder is read ``--rounds`` times; the first round also pays the LM's loading and the kernels' first use.
Issue #27 asks for ≥ 150 images/s from the default on this machine's two cores: run it on an otherwise idle
machine (the record keeps the load average).

``--threads``/``--busy`` (issue 34): the thread policy beside other work. For each number of competing busy-loop
processes (``--busy``, each a single-threaded ``while True``) and each thread setting (a count, or ``auto``: the
default), the first decoder reads the images ``--rounds`` times and the wall and CPU seconds of each round are
kept, with the thread counts the policy chose. Run it with OMP_NUM_THREADS unset, so torch's default is every core.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from record import write

from crnn_lit.paths import shared_data_dir
from crnn_lit.reading.inference import bound_kernel_cache
from crnn_lit.reading.recognizer import Recognizer, find_images


def timed_rounds(reader: Recognizer, data, rounds: int) -> tuple[list[dict], list]:
    """Wall and CPU seconds (this process, all its threads) of each reading of ``data``; the last predictions."""
    out, predictions = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), os.times()
        predictions = reader.read(data)
        c1 = os.times()
        wall = time.perf_counter() - t0
        out.append({"images": len(predictions), "wall_s": round(wall, 2),
                    "cpu_s": round(c1.user + c1.system - c0.user - c0.system, 2),
                    "images_per_s": round(len(predictions) / wall, 1)})
    return out, predictions


def thread_policy(args, data) -> dict:
    """``--busy`` × ``--threads``: wall and CPU time of each setting beside that many busy-loop processes. The
    settings take turns round by round, so a change in the machine's other load reaches them all alike."""
    result = {}
    for busy in args.busy:
        loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(1.0)  # the loops running before the first reading
            readers = {}
            for setting in args.threads:
                readers[setting] = Recognizer.from_pretrained(decoder=args.decoders[0],
                                                              threads=None if setting == "auto" else int(setting))
                readers[setting].read(data[:64])  # kernels' first use, the LM's load
            rows = {setting: {"rounds": []} for setting in args.threads}
            for _ in range(args.rounds):
                for setting, reader in readers.items():
                    rows[setting]["rounds"] += timed_rounds(reader, data, 1)[0]
                    print(busy, setting, rows[setting]["rounds"][-1], flush=True)
        finally:
            for loop in loops:
                loop.kill()
                loop.wait()
        for setting, row in rows.items():
            if setting == "auto":
                chosen = readers[setting].backend.threads.chosen
                row["threads_chosen"] = {str(n): chosen.count(n) for n in sorted(set(chosen))}
            if "1" in rows:  # each round against the one-thread reading of the same round, the median kept
                ratios = sorted(r["wall_s"] / one["wall_s"] for r, one in zip(row["rounds"], rows["1"]["rounds"]))
                row["wall_vs_one_thread"] = round(ratios[len(ratios) // 2], 2)
        result[f"busy_loops_{busy}"] = rows
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(Path(shared_data_dir()) / "benchmarks" / "iiit5k"))
    ap.add_argument("--decoders", nargs="+", default=["model", "greedy"], help="model: the model's own decoding")
    ap.add_argument("--ckpt", default=None, help="a candidate's checkpoint or .onnx (default: the default model)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", nargs="+", default=None, help="thread settings to compare: counts and/or auto")
    ap.add_argument("--busy", nargs="+", type=int, default=[0, 1], help="competing busy-loop processes (--threads)")
    ap.add_argument("--limit", type=int, default=None, help="the first N images of --data")
    ap.add_argument("--out", default="bench/results/predict_speed.json")
    args = ap.parse_args()
    bound_kernel_cache()  # as predict does
    data = [str(p) for p, _ in find_images(args.data)][:args.limit] if args.limit else args.data
    if args.threads:
        result = {"data": args.data, "images": len(data), "decoder": args.decoders[0],
                  "torch_default_threads": torch.get_num_threads(), "cores": len(os.sched_getaffinity(0)),
                  "settings": thread_policy(args, data)}
        write(args.out, {"command": "python bench/predict_speed.py", **result})
        return
    result = {"data": args.data, "model": args.ckpt or "default", "threads": torch.get_num_threads(), "decoders": {}}
    for name in args.decoders:
        start = time.perf_counter()
        reader = (Recognizer.from_checkpoint(args.ckpt, decoder=name) if args.ckpt  # every other setting the default
                  else Recognizer.from_pretrained(decoder=name))
        load_s = time.perf_counter() - start
        rounds, predictions = timed_rounds(reader, args.data, args.rounds)
        rounds = [r["images_per_s"] for r in rounds]
        result["decoders"][name] = {"images": len(predictions), "images_per_s_by_round": rounds,
                                    "model_and_decoder_load_s": round(load_s, 2),
                                    "unreadable": sum(p.error is not None for p in predictions)}
    write(args.out, {"command": "python bench/predict_speed.py", **result})


if __name__ == "__main__":
    main()
