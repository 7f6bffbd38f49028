"""How inference batching changes readings: padded batches against per-image padding (never a benchmark).

    python bench/inference_padding.py [--ckpt data/pretrained/synthetic_only.pt] [--real-train ../shared/data/real_train]

Reads every real_train crop (a model that never trained on them: synthetic_only.pt) — or, without
``--real-train``, the real_train hold-out — and decodes greedily under:

* ``padded_batches``: batches of 64 similar widths, each image right-padded to its batch's widest (inference
  before 2026-11-26; a reading depended on its neighbours);
* ``exact``: no padding, one width per batch (what one image read alone gives);
* ``pad<k>``: every image padded by k columns, whatever its batch;
* ``multiple<m>``: every image padded to the next multiple of m — what inference does (``preprocess.width_multiple``).

Padding repeats each image's last column, as training batches do; frames past an image's own width are never
decoded. Writes accuracy, and how many readings differ from ``exact``, to bench/results/inference_padding.json.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch
from record import write

from crnn_lit.config import PROJECT_ROOT
from crnn_lit.data.batching import Collate, EpochSampler, WidthBatchSampler
from crnn_lit.data.dataset import Item
from crnn_lit.data.sources import open_source
from crnn_lit.holdout import holdout_source
from crnn_lit.metrics import protocol_normalize
from crnn_lit.reading.inference import recognize, width_batches
from crnn_lit.reading.recognizer import Recognizer


def padded_batches(images, keys, labels, collate: Collate, batch_size: int = 64):
    """The former inference batching: similar widths, each image padded to its batch's widest."""
    widths = np.array([im.shape[-1] for im in images])
    for indices in WidthBatchSampler(EpochSampler(len(images), shuffle=False), batch_size, widths.__getitem__):
        yield collate([Item(images[i], [], labels[i], keys[i]) for i in indices])


def readings(backend, decoder, batches) -> dict[str, tuple[str, str]]:
    """key → (reading, label), both under the standard protocol."""
    out = {}
    for r in recognize(backend, batches):
        for key, p, label in zip(r.keys, decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
            out[key] = (protocol_normalize(p.text), protocol_normalize(label))
    return out


def compare(reader: Recognizer, source) -> dict:
    backend, decoder = reader.backend, reader.decoder
    images, keys, labels, _ = reader.prepare_source(source)
    collate = Collate(backend.output_length)
    own = {key: backend.output_length(im.shape[-1]) for key, im in zip(keys, images)}

    def batched(imgs, multiple=1):  # width_batches at another width multiple than the model's
        return width_batches(imgs, 64, keys, labels, output_length=backend.output_length, width_multiple=multiple)

    runs = {"padded_batches": readings(backend, decoder, padded_batches(images, keys, labels, collate)),
            "exact": readings(backend, decoder, batched(images))}
    for k in (2, 4, 8):
        batches = list(batched([torch.cat([im, im[:, :, -1:].expand(-1, -1, k)], -1) for im in images]))
        for b in batches:  # frames from each image's own width, as in training
            b.input_lengths[:] = torch.tensor([own[key] for key in b.keys])
        runs[f"pad{k}"] = readings(backend, decoder, batches)
    for m in (4, 8):
        runs[f"multiple{m}"] = readings(backend, decoder, batched(images, m))
    base = runs["exact"]
    return {"images": len(images), **{name: {"accuracy": round(100 * sum(p == l for p, l in r.values()) / len(r), 2),
                                             "differ_from_exact": sum(r[k][0] != base[k][0] for k in r)}
                                      for name, r in runs.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(PROJECT_ROOT / "data" / "pretrained" / "synthetic_only.pt"))
    ap.add_argument("--real-train", default=None, help="read this real_train folder's subsets, not the hold-out")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "inference_padding.json"))
    args = ap.parse_args()
    reader = Recognizer.from_checkpoint(args.ckpt, "greedy")
    result = {"ckpt": args.ckpt, "threads": int(os.environ["OMP_NUM_THREADS"])}
    if args.real_train is None:
        result["holdout"] = compare(reader, holdout_source())
    else:
        root = Path(args.real_train)
        for sub in sorted(p.name for p in root.iterdir() if (p / "labels.tsv").is_file()):
            result[f"real_train/{sub}"] = compare(reader, open_source(root / sub, "folder", split="test"))
    write(args.out, result)


if __name__ == "__main__":
    main()
