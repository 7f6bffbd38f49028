"""Wide lines read squeezed, whole or in windows: ``python bench/line_windows.py [--model cpu_scene_text]``.

The lines of ``lines/sroie_val`` wider than 12.5× their height (wider than 400 px at height 32: what every model
used to squeeze to ``max_width``) read by one shipped model, greedy, four ways: squeezed to 400 px (the old
reading, still a word model's default: it is read as it was trained), at their own width, and in overlapping
windows whose frame posteriors are merged (``Recognizer(window=…)``, ``inference.read_windowed``). The shipped models read lowercase words without a
space, so the score is the word protocol's ([0-9a-z] only, spaces gone): CER and exact match of the line's
characters. Writes bench/results/line_windows.json. Evaluation data only: nothing here is tuned on it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from record import write

from crnn_lit.data.sources import open_source
from crnn_lit.metrics import TextMetrics
from crnn_lit.reading.recognizer import Recognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cpu_scene_text")
    parser.add_argument("--data", default=os.environ.get("CRNN_LIT_DATA", "/work/shared/data"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "line_windows.json"))
    args = parser.parse_args()
    source = open_source(Path(args.data) / "lines" / "sroie_val", "folder", split="test")
    wide = [i for i in range(len(source)) if source.size(i)[0] > 12.5 * source.size(i)[1]]
    base = Recognizer.from_pretrained(args.model, "greedy")
    ways = {"squeezed to max_width 400 px (window=null)": {}, "own width (window=100000)": {"window": 100_000},
            **{f"windows {w} px, overlap {o}": {"window": w, "window_overlap": o}
               for w, o in ((400, 64), (400, 128), (800, 128), (1600, 128))}}
    results = {}
    for name, way in ways.items():
        reader = Recognizer(base.backend, base.preprocess, base.decoder, 64, 8192, **way)
        images, keys, labels, _ = reader.prepare_source(source, wide)
        metrics, start, frames = TextMetrics(protocol="word"), time.perf_counter(), 0
        for r in reader.recognize(images, keys, labels):
            metrics.update([p.text for p in reader.decoder.decode(r.log_probs, r.lengths)], r.labels)
            frames += int(r.lengths.sum())
        seconds = time.perf_counter() - start
        values = {k: round(float(v), 4) for k, v in metrics.compute().items()}
        results[name] = {"exact": values["acc"], "cer": values["cer"], "frames": frames,
                         "seconds": round(seconds, 2)}
        print(f"{name:32s} exact {100 * values['acc']:5.1f}  CER {100 * values['cer']:5.1f} %  frames {frames}  "
              f"{seconds:.1f} s")
    write(args.out, {"model": args.model, "set": "lines/sroie_val, lines wider than 12.5x their height",
                     "lines": len(wide), "decoder": "greedy", "protocol": "word ([0-9a-z], spaces removed)",
                     "threads": torch.get_num_threads(), "ways": results})


if __name__ == "__main__":
    main()
