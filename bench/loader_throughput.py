"""Training-loader throughput (images/s) per data format, and padding waste per width policy.

    python bench/loader_throughput.py [--images 6400] [--workers 2] [--batch-size 64]

1. Converts ../shared/data/real_train (iiit5k, svt, ic15) into a temporary LMDB tree with the converter
   (``crnn_lit.data.cli.convert``), timing it.
2. Measures the training DataLoader exactly as ``TextDataModule.train_dataloader`` builds it (bucketed widths,
   label policy, resize, collate; ``--workers`` worker processes, batch ``--batch-size``) over: the LMDB tree,
   the same crops as folders (also with ``augment=light`` and ``augment=strong``), and the embedded renderer.
   The first batches (worker start-up) are excluded; rejected samples (out-of-charset labels, …) are not counted.
3. Padding waste of one shuffled epoch over the IIIT5K *test* image widths (only widths are read) for the
   ``fixed``, ``keep_ratio`` and ``bucketed`` policies.
The rates are compared with what training consumes on this machine (light model ≈ 180 images/s, paper model
≈ 30–40): the loader should deliver at least 3× that. Writes bench/results/loader_throughput.json.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

from hydra.utils import instantiate

ROOT = Path(__file__).resolve().parents[1]

from record import write

from crnn_lit.config import PROJECT_ROOT, compose_config
from crnn_lit.data.batching import padding_waste
from crnn_lit.data.cli import convert, load_charset
from crnn_lit.data.datamodule import TextDataModule
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.data.sources.lmdb import LmdbDataset
from crnn_lit.data.sources.mixed import MixedSource
from crnn_lit.data.sources.renderer import SyntheticWords, WordRenderer
from crnn_lit.model.backbone import WidthPlan
from crnn_lit.preprocess import Preprocess

output_length = WidthPlan().output_length  # the paper's plan: T = W // 4 + 1
PREPROCESS = Preprocess.from_conf()  # conf/preprocess/default.yaml

SHARED = PROJECT_ROOT.parent / "shared" / "data"
SETS = ("iiit5k", "svt", "ic15")
CONSUMPTION = {"light model (vgg_light + bilstm_light)": 180.0, "paper model (vgg + bilstm)": 35.0}


def loader_rate(source, args, augment=None) -> dict:
    dm = TextDataModule(source, source, load_charset("lowercase"), output_length, preprocess=PREPROCESS,
                        batch_size=args.batch_size, eval_batch_size=128, num_workers=args.workers,
                        samples_per_epoch=args.images, seed=0, augment=augment)
    loader = dm.train_dataloader()
    warm, images, rejected, start = 4, 0, 0, 0.0
    t0 = time.perf_counter()
    for i, batch in enumerate(loader):
        if i == warm:
            start, images, rejected = time.perf_counter(), 0, 0
        images += len(batch)
        rejected += sum(batch.rejected.values())
    elapsed = time.perf_counter() - start
    total = time.perf_counter() - t0
    del loader
    return {"images_per_s": round(images / elapsed, 1), "images_per_s_incl_startup": round(
        (images + warm * args.batch_size) / total, 1), "images": images, "rejected": rejected,
            "seconds": round(elapsed, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=6400, help="training draws per measured loader")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(ROOT / "bench/results/loader_throughput.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not all((SHARED / "real_train" / s / "labels.tsv").is_file() for s in SETS):
        sys.exit(f"needs {SHARED}/real_train/{{{','.join(SETS)}}} (labels.tsv + images)")

    result: dict = {"settings": {"images": args.images, "workers": args.workers, "batch_size": args.batch_size,
                                 "width_policy": "bucketed", "charset": "lowercase"}}
    folders = {s: FolderDataset(SHARED / "real_train" / s) for s in SETS}
    with tempfile.TemporaryDirectory(prefix="crnn_lit_bench_") as tmp:
        t0, written = time.perf_counter(), 0
        for name, folder in folders.items():
            report = convert(folder, Path(tmp) / "real_train" / name, f"bench:{name}", workers=args.workers)
            written += report["written"]
        seconds = time.perf_counter() - t0
        result["convert_real_train"] = {"images": written, "seconds": round(seconds, 2),
                                        "images_per_s": round(written / seconds, 1)}
        rates = {"lmdb (real_train tree)": loader_rate(LmdbDataset(Path(tmp) / "real_train"), args)}
    rates["folder (real_train)"] = loader_rate(MixedSource(folders), args)
    for option in ("light", "strong"):
        augment = instantiate(compose_config([f"augment={option}"]).augment)
        rates[f"folder (real_train) + augment={option}"] = loader_rate(MixedSource(folders), args, augment)
    renderer = WordRenderer(str(PROJECT_ROOT / "data/words/english.txt"), str(PROJECT_ROOT / "data/fonts"), PREPROCESS)
    rates["renderer"] = loader_rate(SyntheticWords(renderer, 10**9), args)
    result["loader"] = rates
    slowest = min(r["images_per_s"] for r in rates.values())
    result["vs_training"] = {name: {"consumes_images_per_s": rate, "slowest_loader_margin": round(slowest / rate, 1)}
                             for name, rate in CONSUMPTION.items()}

    iiit5k = SHARED / "benchmarks" / "iiit5k"
    if (iiit5k / "labels.tsv").is_file():
        ds = FolderDataset(iiit5k)
        sizes = [ds.size(i) for i in range(len(ds))]
        waste = {}
        for policy in ("fixed", "keep_ratio", "bucketed"):
            resize = PREPROCESS.replace(width_policy=policy).resize
            waste[policy] = round(padding_waste([resize.width_for(w, h) for w, h in sizes], args.batch_size,
                                                bucketed=policy == "bucketed"), 4)
        result["padding_waste_iiit5k_widths"] = {"images": len(ds), "batch_size": args.batch_size, **waste}

    write(args.out, result)


if __name__ == "__main__":
    main()
