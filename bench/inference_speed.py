"""Inference images/s on the IIIT5K benchmark images (or the real_train hold-out): torch eager, torch.compile,
ONNX Runtime fp32 and ONNX Runtime int8 (dynamic quantization), at batch 1 and batched by width — plus each path's
accuracy.

Timing covers the network and the decoder (forward + log-softmax + ``--decoder``, a conf/decoder name: greedy by
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
from hydra.utils import instantiate
from record import write

from crnn_lit.checkpoint import load_model
from crnn_lit.config import PROJECT_ROOT, compose_config
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.evaluate import read_source
from crnn_lit.export import export
from crnn_lit.inference import OnnxBackend, TorchBackend, recognize, width_batches
from crnn_lit.metrics import TextMetrics
from crnn_lit.preprocess import Preprocess


class _Compiled(TorchBackend):
    def __init__(self, model):
        super().__init__(model)
        self.model = torch.compile(model, dynamic=True)


def run(backend, images, keys, labels, batch_size, decoder, width_multiple: int) -> tuple[float, float]:
    """(images/s, word accuracy) over all images, batched as inference batches them."""
    metrics = TextMetrics(normalize=True)
    start = time.perf_counter()
    batches = width_batches(images, batch_size, keys, labels, output_length=backend.output_length,
                            width_multiple=width_multiple)
    for r in recognize(backend, batches):
        metrics.update([p.text for p in decoder.decode(r.log_probs, r.lengths)], r.labels)
    elapsed = time.perf_counter() - start
    return len(images) / elapsed, float(metrics.compute()["acc"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared/data/benchmarks/iiit5k"))
    parser.add_argument("--holdout", action="store_true", help="read the real_train hold-out instead of --data")
    parser.add_argument("--decoder", default="greedy", help="a conf/decoder name (greedy, beam, beam_lm)")
    parser.add_argument("--backends", nargs="+", default=None, help="a subset of the four back ends")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="first N images (batch-1 runs use min(N, 600))")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench/results/inference_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    loaded = load_model(args.ckpt)
    preprocess = Preprocess.from_record(loaded.config)
    source = (instantiate(compose_config(["data=real_finetune"]).data.val) if args.holdout  # bench/holdout.py's
              else FolderDataset(args.data, limit=args.limit))
    start = time.perf_counter()
    images, keys, labels, _ = read_source(source, preprocess)
    preprocess_ips = len(images) / (time.perf_counter() - start)
    decoder = instantiate(compose_config([f"decoder={args.decoder}"], config_name="predict").decoder)(loaded.charset)
    n1 = min(len(images), 600)

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export(args.ckpt, "onnx", Path(tmp) / "model.onnx")
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8_path = Path(tmp) / "model.int8.onnx"
        quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
        Path(str(int8_path) + ".json").write_text(Path(str(onnx_path) + ".json").read_text())
        backends = {
            "torch_eager": TorchBackend(loaded.model),
            "torch_compile": _Compiled(loaded.model),
            "onnxruntime_fp32": OnnxBackend(onnx_path, threads=args.threads),
            "onnxruntime_int8": OnnxBackend(int8_path, threads=args.threads),
        }
        rows = {}
        for name, backend in backends.items():
            if args.backends and name not in args.backends:
                continue
            m = preprocess.width_multiple
            run(backend, images[:128], keys[:128], labels[:128], args.batch_size, decoder, m)  # warm-up / compile
            batched_ips, acc = run(backend, images, keys, labels, args.batch_size, decoder, m)
            single_ips, _ = run(backend, images[:n1], keys[:n1], labels[:n1], 1, decoder, m)
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
        "backends": rows, "ckpt": str(args.ckpt), "model": loaded.config,
        "threads": args.threads,
    }
    write(args.out, out)


if __name__ == "__main__":
    main()
