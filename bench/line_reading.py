"""A model's default reading of text lines under the line protocol, on all of a folder's lines and on those wider
than 12.5× their height: ``python bench/line_reading.py --ckpt data/pretrained/ppocr_v6_small.onnx``.

Line accuracy (exact match after upper-casing and collapsing whitespace) and CER (edits / label characters, summed
over the set), as ``evaluate protocol=line`` scores them. Default folder: lines/sroie_val (evaluation and choosing,
never training). Writes bench/results/lines_<model>.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein
from record import write

from crnn_lit.data.sources import open_source
from crnn_lit.metrics import line_normalize
from crnn_lit.paths import shared_data_dir
from crnn_lit.reading.recognizer import Recognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", default=str(Path(shared_data_dir()) / "lines" / "sroie_val"))
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    source = open_source(Path(args.data), "folder", split="test")
    reader = Recognizer.from_checkpoint(args.ckpt, batch_size=32)
    start = time.perf_counter()
    images, keys, labels, _ = reader.prepare_source(source)
    wide = {source.key(i) for i in range(len(source)) if source.size(i)[0] > 12.5 * source.size(i)[1]}
    scores = {"all": [0, 0, 0, 0], "wider than 12.5x their height": [0, 0, 0, 0]}  # lines, exact, edits, chars
    for r in reader.recognize(images, keys, labels):
        for key, p, label in zip(r.keys, reader.decoder.decode(r.log_probs, r.lengths), r.labels, strict=True):
            read, truth = line_normalize(p.text), line_normalize(label)
            for name in scores if key in wide else ("all",):
                row = scores[name]
                row[0], row[1] = row[0] + 1, row[1] + (read == truth)
                row[2], row[3] = row[2] + Levenshtein.distance(read, truth), row[3] + len(truth)
    result = {name: {"lines": n, "line_accuracy": round(100 * hits / n, 2), "cer": round(100 * edits / chars, 2)}
              for name, (n, hits, edits, chars) in scores.items()}
    print(result)
    name = Path(args.ckpt).stem
    write(args.out or str(Path(__file__).parent / "results" / f"lines_{name}.json"),
          {"model": args.ckpt, "data": args.data, "decoding": reader.decoder.__class__.__name__,
           "protocol": "line", "seconds": round(time.perf_counter() - start, 1), **result})


if __name__ == "__main__":
    main()
