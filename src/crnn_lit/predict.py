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
from contextlib import closing
from pathlib import Path

from omegaconf import DictConfig

from crnn_lit.config import ConfigError, check_required
from crnn_lit.data.sources.image_io import IMAGE_SUFFIXES
from crnn_lit.reading.inference import bound_kernel_cache
from crnn_lit.reading.recognizer import Recognizer, keyed_inputs
from crnn_lit.task import task

log = logging.getLogger("crnn_lit.predict")


def predict(cfg: DictConfig, collect: bool = True) -> list[dict]:
    """Read ``cfg.inputs`` with ``Recognizer.from_config(cfg)``, ``cfg.chunk_size`` images at a time; print a table
    and write ``cfg.output`` (if set) row by row as the images are read (unreadable images last); rows: {image,
    text, confidence} or {image, error}, returned when ``collect`` (the command line keeps none: flat memory).
    No image to read, an output that cannot be written (checked before anything is read) or a run in which no
    image could be read: ``ConfigError``; some unreadable images: a warning."""
    check_required(cfg)
    inputs = list(keyed_inputs(cfg.inputs))  # paths only: listed once, for the table's column width
    if not inputs:
        raise ConfigError(f"inputs={cfg.inputs}: no image file in it (suffixes: {', '.join(sorted(IMAGE_SUFFIXES))})")
    width = max([len(key) for key, _ in inputs] + [5])
    rows, failed = [], []
    with closing(RowWriter(Path(cfg.output) if cfg.output else None)) as writer:
        recognizer = Recognizer.from_config(cfg)
        for p in recognizer.iter_keyed(inputs):
            if p.error is not None:
                failed.append({"image": p.image, "error": p.error})
                continue
            row = {"image": p.image, "text": p.text, "confidence": round(p.confidence, 4)}
            print(f"{row['image']:<{width}}  {row['confidence']:.3f}  {row['text']}")
            writer.add(row)
            if collect:
                rows.append(row)
        for row in failed:
            print(f"{row['image']:<{width}}  -----  ({row['error']})")
        writer.finish(failed)
    where = f"; written to {writer.path}" if writer.path else ""
    print(f"{writer.count} read, {len(failed)} unreadable{where}", file=sys.stderr)
    if failed and not writer.count:
        raise ConfigError(f"no image could be read: all {len(failed)} unreadable (e.g. {failed[0]['image']}: "
                          f"{failed[0]['error']})")
    if failed:
        log.warning("%d of %d images could not be read (listed last%s)", len(failed), len(inputs),
                    f", and in {writer.path}" if writer.path else "")
    return rows + failed


class RowWriter:
    """``output`` (.csv, or .json: {"predictions": [...], "unreadable": [...]}) written row by row, unreadable
    images last (``finish``); None writes nothing. Opened when made, so a path that cannot be written (a
    folder, a read-only place, a parent that is a file) is a ``ConfigError`` before anything is read."""

    def __init__(self, path: Path | None):
        self.path, self.count, self._file = path, 0, None
        if path is None:
            return
        if path.is_dir():
            raise ConfigError(f"output={path} is a folder: give a file to write, e.g. output={path / 'predictions.csv'}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "w", newline="", encoding="utf-8")  # noqa: SIM115 — closed by close()
        except OSError as err:
            raise ConfigError(f"output={path} cannot be written ({err.strerror or err}): give a file in a folder you "
                              "can write to") from None
        if path.suffix == ".json":
            self._file.write('{"predictions": [')
        else:
            self._csv = csv.DictWriter(self._file, fieldnames=["image", "text", "confidence", "error"])
            self._csv.writeheader()

    def add(self, row: dict) -> None:
        self.count += 1
        if self._file is None:
            return
        if self.path.suffix == ".json":
            self._file.write(("," if self.count > 1 else "") + "\n  " + json.dumps(row))
        else:
            self._csv.writerow(row)

    def finish(self, failed: list[dict]) -> None:
        if self._file is None:
            return
        if self.path.suffix == ".json":
            self._file.write('\n], "unreadable": ' + json.dumps(failed, indent=2) + "}\n")
        else:
            self._csv.writerows(failed)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@task("predict")
def main(cfg: DictConfig) -> None:
    bound_kernel_cache()
    predict(cfg, collect=False)


if __name__ == "__main__":
    main()
