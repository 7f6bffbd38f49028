"""Read the text in word images: ``python -m crnn_lit.predict ckpt=… inputs=<file|folder|glob> [output=x.csv]``.

The command line of ``crnn_lit.Recognizer`` (one copy of the reading logic). ``ckpt`` may be a crnn_lit
checkpoint (torch) or an exported ``.onnx`` model (onnxruntime; its ``.json`` sidecar
gives charset and preprocessing): both go through the same preprocessing, batching and decoders, so they print
the same text. Unreadable images are reported and skipped; the rest are still read.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig

from crnn_lit.config import check_required
from crnn_lit.recognizer import Recognizer
from crnn_lit.task import task

log = logging.getLogger("crnn_lit.predict")


def predict(cfg: DictConfig) -> list[dict]:
    """Read ``cfg.inputs`` with ``Recognizer.from_config(cfg)``; print a table (unreadable images last), write
    ``cfg.output`` if set; rows: {image, text, confidence} or {image, error}."""
    check_required(cfg)
    predictions = Recognizer.from_config(cfg).read(cfg.inputs)
    results = [{"image": p.image, "text": p.text, "confidence": round(p.confidence, 4)}
               for p in predictions if p.error is None]
    failed = [{"image": p.image, "error": p.error} for p in predictions if p.error is not None]
    width = max([len(r["image"]) for r in results + failed] + [5])
    for row in results:
        print(f"{row['image']:<{width}}  {row['confidence']:.3f}  {row['text']}")
    for row in failed:
        print(f"{row['image']:<{width}}  -----  ({row['error']})")
    print(f"{len(results)} read, {len(failed)} unreadable", file=sys.stderr)
    if cfg.output:
        write(Path(cfg.output), results, failed)
    return results + failed


def write(path: Path, results: list[dict], failed: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps({"predictions": results, "unreadable": failed}, indent=2) + "\n", encoding="utf-8")
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["image", "text", "confidence", "error"])
        writer.writeheader()
        writer.writerows(results + failed)


@task("predict")
def main(cfg: DictConfig) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
