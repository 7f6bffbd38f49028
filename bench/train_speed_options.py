"""Training images/s of one model under the CPU speed options the issue asks about, in a plain PyTorch loop.

Same pre-collated batches (1x32xW, random labels) for every option; AdamW (the default optimizer), CTC in fp32,
gradient clipping 5. Options: fp32 baseline, bf16 autocast, channels-last, torch.compile, batch 32/128, 1 thread.
Each option trains a fresh model for ``--warmup`` untimed steps (compilation happens there) and ``--steps`` timed
ones. Writes bench/results/train_speed_options_<backbone>_<rnn>.json.

    OMP_NUM_THREADS=2 python bench/train_speed_options.py [--backbone vgg_light] [--rnn bilstm_light] [--steps 20]
"""

from __future__ import annotations

import argparse
import sys

import torch
from record import write
from train_throughput import make_batches, nodes, run_plain  # bench/ (the script's folder) is on sys.path

from crnn_lit.charset import Charset
from crnn_lit.config import PROJECT_ROOT
from crnn_lit.model import build_model

OPTIONS = {  # name → (batch size, threads, bf16 autocast, channels-last, compile)
    "fp32 (baseline)": (64, 2, False, False, False),
    "bf16 autocast": (64, 2, True, False, False),
    "channels-last": (64, 2, False, True, False),
    "torch.compile": (64, 2, False, False, True),
    "batch 32": (32, 2, False, False, False),
    "batch 128": (128, 2, False, False, False),
    "1 thread": (64, 1, False, False, False),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="vgg_light")
    parser.add_argument("--rnn", default="bilstm_light")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="a subset of option names")
    args = parser.parse_args()

    charset = Charset.from_file(PROJECT_ROOT / "data" / "charsets" / "lowercase36.txt")
    results = {}
    for name, (batch, threads, bf16, channels_last, compiled) in OPTIONS.items():
        if args.only and name not in args.only:
            continue
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        model = build_model(*nodes(args.backbone, args.rnn), charset.num_classes, 1)
        batches = make_batches(args.steps + args.warmup, batch, args.width, charset)
        ips = run_plain(model, batches, args.warmup, lambda params: torch.optim.AdamW(params, lr=1e-3),
                        bf16, channels_last, compiled)
        results[name] = round(ips, 1)
        print(f"{name}: {ips:.1f} images/s", file=sys.stderr)
    base = results.get("fp32 (baseline)")
    out = {
        "what": f"plain-loop train images/s, {args.backbone}+{args.rnn}, 1x32x{args.width}, AdamW, CTC fp32",
        "images_per_s": results,
        "relative_to_fp32": {k: round(v / base, 3) for k, v in results.items()} if base else None,
        "steps_timed": args.steps, "warmup_steps": args.warmup,
    }
    write(PROJECT_ROOT / "bench" / "results" / f"train_speed_options_{args.backbone}_{args.rnn}.json", out)


if __name__ == "__main__":
    main()
