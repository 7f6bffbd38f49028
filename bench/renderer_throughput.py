"""Throughput of the embedded synthetic word renderer, single process, one thread.

    python bench/renderer_throughput.py [--n 3000] [--channels 1] [--renderer default|v1|lines]
        [--samples docs/renderer_samples.png [--real ../shared/data/real_train/iiit5k]] [--set KEY=VALUE ...]

``--renderer lines`` renders text lines at their own width (``preprocess.max_width=null``, unless ``--set`` says
otherwise) and writes bench/results/renderer_lines.json; ``--set`` passes more config overrides
(``--set preprocess=ppocr``).

Renders a cold pass (indices 0..n-1, font/glyph caches filling up), ``--warmup`` more renders (the face cache
holds every font × size, 199 × 19 for renderer=default: a few thousand renders do not fill it), then a warm pass
of ``--n`` further indices (different words, caches filled) — the warm rate is what a long training run sees
(DataLoader workers persist across epochs, so do their caches); the cold one its first minutes. Also
times ``width(i)``, which the width-bucketing batch sampler calls on every index. Prints a JSON summary and
writes it to bench/results/renderer.json. ``--samples`` additionally saves a grid of 16 renders.
"""

from __future__ import annotations

import os

# Pin threads before numpy/torch/cv2 are imported: this measures one core.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from hydra.utils import instantiate
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from record import write

from crnn_lit.config import compose_config
from crnn_lit.data.sources.renderer import WordRenderer


def save_grid(renderer: WordRenderer, path: Path, n: int = 16, cols: int = 2, cell_w: int = 240, zoom: int = 2,
              real: Path | None = None) -> None:
    """Save ``n`` renders (indices 0..n-1) as one PNG, ``cols`` per row, magnified ``zoom``x (nearest).

    ``real``: a folder with ``labels.tsv``; its first ``n`` crops (scaled to the same height) fill a second block
    of columns to the right, for a side-by-side look. Keep such a sheet out of the repository (dataset images).
    """
    h, gap = renderer.preprocess.height, 4
    images = [Image.fromarray(renderer.render(i).image).convert("RGB") for i in range(n)]
    blocks = [images]
    if real is not None:
        rels = [line.split("\t")[0] for line in (real / "labels.tsv").read_text("utf-8").splitlines()[:n]]
        crops = [Image.open(real / rel).convert("RGB") for rel in rels]
        blocks.append([c.resize((max(1, round(c.width * h / c.height)), h), Image.Resampling.LANCZOS) for c in crops])
    rows = (n + cols - 1) // cols
    block_w = cols * (cell_w + gap) + gap
    grid = Image.new("RGB", (len(blocks) * block_w, rows * (h + gap) + gap), (128, 128, 128))
    for b, block in enumerate(blocks):
        for i, img in enumerate(block):
            img = img.crop((0, 0, min(img.width, cell_w), h))
            grid.paste(img, (b * block_w + gap + (i % cols) * (cell_w + gap), gap + (i // cols) * (h + gap)))
    grid = grid.resize((grid.width * zoom, grid.height * zoom), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3000, help="images per pass")
    ap.add_argument("--channels", type=int, default=1, choices=(1, 3))
    ap.add_argument("--warmup", type=int, default=12000, help="renders between the cold and the warm pass")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--renderer", default="default", help="renderer config (conf/renderer/<name>.yaml)")
    ap.add_argument("--train-rate", type=float, default=178.0,
                    help="images/s the fastest training set-up consumes (light CRNN, make train: 150-178)")
    ap.add_argument("--out", default=None, help="default: bench/results/renderer.json (renderer_lines.json for lines)")
    ap.add_argument("--set", nargs="*", default=[], help="more config overrides, e.g. preprocess.height=48")
    ap.add_argument("--samples", default=None, help="also save a 24-image PNG grid here")
    ap.add_argument("--real", default=None, help="with --samples: a labels.tsv folder shown beside the renders")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    lines = args.renderer == "lines"
    overrides = [f"renderer={args.renderer}", f"preprocess.channels={args.channels}"]
    cfg = compose_config(overrides + (["preprocess.max_width=null"] if lines else []) + args.set)
    renderer = WordRenderer.from_spec(cfg.renderer, instantiate(cfg.preprocess), seed=args.seed)
    init_s = time.perf_counter() - t0

    n = args.n
    t0 = time.perf_counter()
    for i in range(n):
        renderer.render(i)
    cold_s = time.perf_counter() - t0

    for i in range(n, n + args.warmup):
        renderer.render(i)

    widths, warm = [], range(n + args.warmup, 2 * n + args.warmup)
    t0 = time.perf_counter()
    for i in warm:
        widths.append(renderer.render(i).image.shape[1])
    warm_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i in warm:
        renderer.width(i)
    width_us = (time.perf_counter() - t0) / n * 1e6

    result = {
        "images": n,
        "images_per_s": round(n / warm_s, 1),
        "images_per_s_cold": round(n / cold_s, 1),
        "warmup_renders": args.warmup,
        "renderer": args.renderer,
        "train_images_per_s": args.train_rate,
        "renderer_over_training": round(n / warm_s / args.train_rate, 2),  # issue #11: keep >= 3
        "content": renderer.content,
        "mean_label_chars": round(float(np.mean([len(renderer.label(i)) for i in warm])), 1),
        "overrides": args.set,
        "mean_width": round(float(np.mean(widths)), 1),
        "max_width": int(np.max(widths)),
        "width_us_per_call": round(width_us, 2),
        "init_s": round(init_s, 3),
        "fonts": len(renderer.fonts),
        "words": len(renderer.words),
        "height": renderer.preprocess.height,
        "channels": renderer.preprocess.channels,
        "cv2_threads": cv2.getNumThreads(),
    }
    out = args.out or str(ROOT / f"bench/results/renderer{'_lines' if lines else ''}.json")
    write(out, result)
    if args.samples:
        save_grid(renderer, Path(args.samples), n=24, real=Path(args.real) if args.real else None)
        print(f"saved samples to {args.samples}")


if __name__ == "__main__":
    main()
