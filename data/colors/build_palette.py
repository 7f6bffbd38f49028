"""Rebuild real_train.tsv: text/background colour pairs measured on real training crops, clustered.

    python data/colors/build_palette.py [--clusters 96] [--out data/colors/real_train.tsv]

Reads the training side of `data=real_finetune`'s hold-out split (../shared/data/real_train: IIIT5K, SVT and IC15
*training* crops; the crops held out for validation are left out, so a model validated on them has not seen
their colours either), measures each crop's text and background colour (crop_colours: Otsu split, the class
filling the crop's outer ring is the background) and keeps k-means centres of the (text, background) pairs with
their shares. No pixel of any image is stored: 96 colour pairs, a few kB. Benchmarks are never read.
"""

from __future__ import annotations

import argparse
import io
from collections import Counter
from pathlib import Path

import numpy as np
from hydra.utils import instantiate
from PIL import Image

from crnn_lit.config import compose_config
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources.renderer.palette import cluster_pairs, crop_colours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters", type=int, default=96)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "real_train.tsv"))
    args = ap.parse_args()

    real = instantiate(compose_config(["data=real_finetune"]).data.train.sources.real)  # the training side
    pairs, skipped = [], Counter()
    for i in range(len(real)):
        try:
            rgb = np.asarray(Image.open(io.BytesIO(real.raw(i)[0])).convert("RGB"))
        except (BadSample, OSError):
            skipped["unreadable"] += 1
            continue
        colours = crop_colours(rgb)
        if colours is None:
            skipped["text and background not told apart"] += 1
            continue
        pairs.append([*colours[0], *colours[1]])
    pairs = np.array(pairs)
    centres, shares = cluster_pairs(pairs, args.clusters)
    dark = float(np.mean(pairs[:, :3] @ [0.299, 0.587, 0.114] < pairs[:, 3:] @ [0.299, 0.587, 0.114]))
    header = [
        "# text and background colours of real scene-text crops (data/colors/build_palette.py), k-means centres",
        f"# of {len(pairs)} measured pairs from {len(real)} real_train training-side crops ({dict(skipped)});",
        f"# dark text on a lighter background in {100 * dark:.0f} % of them.",
        "# fg_r\tfg_g\tfg_b\tbg_r\tbg_g\tbg_b\tshare",
    ]
    rows = ["\t".join(f"{v:.3f}" for v in c) + f"\t{s:.4f}" for c, s in sorted(zip(centres.tolist(), shares),
                                                                        key=lambda cs: -cs[1])]
    Path(args.out).write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    print(f"{len(rows)} pairs from {len(pairs)} crops ({dict(skipped)}), dark text {100 * dark:.0f} % -> {args.out}")


if __name__ == "__main__":
    main()
