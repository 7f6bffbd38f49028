"""Read the text in word images: ``python -m crnn_lit.predict ckpt=… inputs=<file|folder|glob> [output=x.csv]``.

``ckpt`` may be a crnn_lit checkpoint (torch) or an exported ``.onnx`` model (onnxruntime; its ``.json`` sidecar
gives charset and preprocessing): both go through the same preprocessing, batching and decoders, so they print
the same text. Unreadable images are reported and skipped; the rest are still read.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

from crnn_lit.checkpoint import load_model
from crnn_lit.config import ConfigError, check_required, resolve_ckpt
from crnn_lit.data.sample import BadSample
from crnn_lit.data.sources.image_io import decode_image
from crnn_lit.inference import OnnxBackend, Preprocess, TorchBackend, recognize, width_batches
from crnn_lit.task import task

log = logging.getLogger("crnn_lit.predict")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


def find_inputs(inputs: str | Sequence[str]) -> list[tuple[Path, str]]:
    """(path, key) of every image of a file, a folder (recursive) or a glob — or of a list of them.

    One input: keys are relative to it (a folder's files by their path inside it). A list (``inputs=[a.png,dir]``):
    keys are the paths as found, each image once, in the order given."""
    if not isinstance(inputs, str):
        found = [pair for item in inputs for pair in _find_one(str(item), relative=False)]
        return list({key: (path, key) for path, key in found}.values())
    return _find_one(inputs, relative=True)


def _find_one(inputs: str, relative: bool) -> list[tuple[Path, str]]:
    path = Path(inputs)
    if path.is_file():
        files, base = [path], path.parent
    elif path.is_dir():
        files, base = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), path
    else:
        files, base = sorted(Path(p) for p in glob.glob(inputs, recursive=True) if Path(p).is_file()), Path(".")
        if not files:
            raise ConfigError(f"inputs={inputs!r} is not a file, a folder or a glob that matches any file")
    return [(p, str(p.relative_to(base)) if relative and p.is_relative_to(base) else str(p)) for p in files]


def load_backend(ckpt: str):
    """(backend, charset, preprocess) for a checkpoint or an exported ONNX model."""
    if str(ckpt).endswith(".onnx"):
        backend = OnnxBackend(ckpt)
        return backend, backend.charset, backend.preprocess
    loaded = load_model(ckpt)
    return TorchBackend(loaded.model), loaded.charset, Preprocess.from_model_config(loaded.config)


def predict(cfg: DictConfig) -> list[dict]:
    check_required(cfg)
    backend, charset, preprocess = load_backend(resolve_ckpt(cfg))
    decoder = instantiate(cfg.decoder)(charset)
    per_image = getattr(decoder, "lexicon", None)
    per_image = per_image if per_image is not None and getattr(per_image, "is_per_image", False) else None
    images, keys, failed = [], [], []
    for path, key in find_inputs(cfg.inputs):
        try:
            images.append(preprocess(decode_image(path, key)))
            keys.append(key)
        except BadSample as err:
            failed.append({"image": key, "error": f"{err.reason}: {err}"})
            log.warning("cannot read %s (%s); skipped", key, err.reason)
    results = []
    for r in recognize(backend, width_batches(images, cfg.batch_size, keys, output_length=backend.output_length)):
        lexicons = per_image.lists_for(r.keys) if per_image is not None else None
        for key, p in zip(r.keys, decoder.decode(r.log_probs, r.lengths, lexicons=lexicons)):
            results.append({"image": key, "text": p.text, "confidence": round(p.confidence, 4)})
    position = {key: i for i, key in enumerate(keys)}
    results.sort(key=lambda row: position[row["image"]])  # input order, not width order
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
