"""Inference images/s on the IIIT5K benchmark images (or the real_train hold-out): torch eager, torch.compile,
ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantization), at batch 1 and batched by width — plus each path's
accuracy.

Timing covers the network and the decoder (forward + log-softmax + ``--decoder``, a decoder name: greedy by
default, beam_lm is what predict and Recognizer use) on preprocessed tensors, so back ends are compared on equal
terms; preprocessing (decode, resize) is the same for all and is reported apart.
Writes bench/results/inference_speed.json.

    python bench/inference_speed.py --ckpt outputs/.../best.ckpt [--threads 2] [--limit 3000]
    python bench/inference_speed.py --ckpt data/pretrained/cpu_scene_text.pt --holdout --decoder beam_lm \
        --backends torch_eager onnxruntime_fp32 --out bench/results/inference_speed_beam_lm.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from record import write

from crnn_lit.checkpoint import load_model
from crnn_lit.config import PROJECT_ROOT
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.export import export
from crnn_lit.holdout import holdout_source
from crnn_lit.metrics import TextMetrics
from crnn_lit.reading.inference import OnnxBackend, TorchBackend
from crnn_lit.reading.recognizer import Recognizer


class _Compiled(TorchBackend):
    def __init__(self, model):
        super().__init__(model)
        self.model = torch.compile(model, dynamic=True)


def run(reader: Recognizer, images, keys, labels) -> tuple[float, float]:
    """(images/s, word accuracy) over all images, batched as ``reader`` batches them."""
    metrics = TextMetrics(normalize=True)
    start = time.perf_counter()
    for r in reader.recognize(images, keys, labels):
        metrics.update([p.text for p in reader.decoder.decode(r.log_probs, r.lengths)], r.labels)
    elapsed = time.perf_counter() - start
    return len(images) / elapsed, float(metrics.compute()["acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared/data/benchmarks/iiit5k"))
    parser.add_argument("--holdout", action="store_true", help="read the real_train hold-out instead of --data")
    parser.add_argument("--decoder", default="greedy", help="a decoder name (greedy, beam, beam_lm)")
    parser.add_argument("--backends", nargs="+", default=None, help="a subset of the four back ends")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N images (batch-1 runs use min(N, 600))")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench/results/inference_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    reader = Recognizer.from_checkpoint(args.ckpt, args.decoder, batch_size=args.batch_size, threads=args.threads)
    source = holdout_source() if args.holdout else FolderDataset(args.data, limit=args.limit)
    start = time.perf_counter()
    images, keys, labels, _ = reader.prepare_source(source)
    preprocess_ips = len(images) / (time.perf_counter() - start)
    n1 = min(len(images), 600)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export(args.ckpt, "onnx", Path(tmp) / "model.onnx")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8_path = Path(tmp) / "model.int8.onnx"
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        Path(str(int8_path) + ".json").write_text(Path(str(onnx_path) + ".json").read_text())
        model = reader.backend.model
        backends = {
            "torch_eager": reader.backend,
            "torch_compile": _Compiled(model),
            "onnxruntime_fp32": OnnxBackend(onnx_path, threads=args.threads),
            "onnxruntime_int8": OnnxBackend(int8_path, threads=args.threads),
        }
        rows = {}
        for name, backend in backends.items():
            if args.backends and name not in args.backends:
                continue
            batched = Recognizer(backend, reader.preprocess, reader.decoder, args.batch_size, reader.chunk_size)
            single = Recognizer(backend, reader.preprocess, reader.decoder, 1, reader.chunk_size)
            run(batched, images[:128], keys[:128], labels[:128])  # warm-up / compile
            batched_ips, acc = run(batched, images, keys, labels)
            single_ips, _ = run(single, images[:n1], keys[:n1], labels[:n1])
            rows[name] = {"batched_images_per_s": round(batched_ips, 1), "batch1_images_per_s": round(single_ips, 1),
                          "accuracy": round(acc, 4)}
            print(name, rows[name], flush=True)
    base = next(iter(rows.values()))["accuracy"]
    for row in rows.values():
        row["accuracy_change_points"] = round(100 * (row["accuracy"] - base), 2)
    out = {
        "what": f"{'real_train hold-out' if args.holdout else args.data} images, network + {args.decoder} decode on "
                "preprocessed tensors, batched by width / batch 1",
        "decoder": args.decoder,
        "images": len(images), "batch1_images": n1, "batch_size": args.batch_size,
        "preprocess_images_per_s_single_process": round(preprocess_ips, 1),
        "backends": rows, "ckpt": str(args.ckpt), "model": load_model(args.ckpt).config,
        "threads": args.threads,
    }
    write(args.out, out)


if __name__ == "__main__":
    main()
