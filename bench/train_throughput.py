"""Training throughput of the paper model through crnn_lit (Lightning + CRNNSystem) vs a plain PyTorch loop.

Both run the same network (7-conv VGG + 2×BiLSTM(256), 37 classes), the same Adadelta optimizer and the same
pre-collated batches (batch 64, 32×100 images), in the same process, alternating rounds so that machine noise
hits both alike. The figure is the ratio framework / plain (target ≥ 0.95). Writes bench/results/train_throughput.json.

    python bench/train_throughput.py [--steps 30] [--warmup 5] [--rounds 2] [--backbone vgg] [--rnn bilstm]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import lightning as L
import torch
from record import write

from crnn_lit.charset import Charset
from crnn_lit.config import PROJECT_ROOT, compose_config, model_config
from crnn_lit.data.batching import Batch
from crnn_lit.model import build_model
from crnn_lit.training.system import CRNNSystem


def make_batches(n: int, batch_size: int, width: int, charset: Charset, seed: int = 0) -> list[Batch]:
    g = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        lengths = torch.randint(3, 12, (batch_size,), generator=g)
        targets = torch.randint(1, charset.num_classes, (int(lengths.sum()),), generator=g)
        images = torch.rand(batch_size, 1, 32, width, generator=g) * 2 - 1
        widths = torch.full((batch_size,), width)
        batches.append(Batch(images, widths, torch.full((batch_size,), width // 4 + 1), targets, lengths,
                             ["x"] * batch_size, [""] * batch_size))
    return batches




class _Timer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.images = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.images += len(batch)


def run_framework(model, charset, batches, warmup) -> float:
    system = CRNNSystem(model, charset, optimizer=lambda p: torch.optim.Adadelta(p, lr=1.0, rho=0.9), scheduler=None,
                        model_config={})
    timer = _Timer(warmup)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=len(batches), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[timer], limit_val_batches=0,
                        gradient_clip_val=5.0, use_distributed_sampler=False)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, collate_fn=lambda b: b)
    trainer.fit(system, train_dataloaders=loader)
    return timer.images / (time.perf_counter() - timer.start)


def run_plain(model, batches, warmup, optimizer=None, bf16=False, channels_last=False, compiled=False) -> float:
    """Images/s of a plain PyTorch training loop over ``batches`` (the first ``warmup`` untimed). ``optimizer``:
    a factory of params (default Adadelta, the paper's); the other options are bench/train_speed_options.py's."""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if compiled else model
    make_optimizer = optimizer or (lambda params: torch.optim.Adadelta(params, lr=1.0, rho=0.9))
    optimizer = make_optimizer(model.parameters())
    model.train()
    images, start = 0, None
    for i, b in enumerate(batches):
        if i == warmup:
            start = time.perf_counter()
        x = b.images.contiguous(memory_format=torch.channels_last) if channels_last else b.images
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            logits = step_model(x)
        log_probs = torch.nn.functional.log_softmax(logits.float(), 2)  # CTC always in fp32
        loss = torch.nn.functional.ctc_loss(log_probs, b.targets, b.input_lengths, b.target_lengths,
                                            zero_infinity=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if i >= warmup:
            images += len(b)
    return images / (time.perf_counter() - start)


def nodes(backbone: str, rnn: str) -> tuple[dict, dict]:
    spec = model_config(compose_config([f"backbone={backbone}", f"rnn={rnn}"]))
    return spec["backbone"], spec["rnn"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--backbone", default="vgg")
    parser.add_argument("--rnn", default="bilstm")
    parser.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "train_throughput.json"))
    args = parser.parse_args()

    charset = Charset.from_file(PROJECT_ROOT / "data" / "charsets" / "lowercase36.txt")
    batches = make_batches(args.steps + args.warmup, args.batch_size, args.width, charset)
    results = {"framework": [], "plain": []}
    for r in range(args.rounds):
        for kind in ("framework", "plain") if r % 2 == 0 else ("plain", "framework"):
            torch.manual_seed(0)
            model = build_model(*nodes(args.backbone, args.rnn), charset.num_classes, 1)
            ips = run_framework(model, charset, batches, args.warmup) if kind == "framework" else \
                run_plain(model, batches, args.warmup)
            results[kind].append(round(ips, 2))
            print(f"round {r} {kind}: {ips:.1f} images/s", file=sys.stderr)
    best = {k: max(v) for k, v in results.items()}
    out = {
        "what": f"train images/s, {args.backbone}+{args.rnn}, batch {args.batch_size}, 1x32x{args.width}, Adadelta, fp32",
        "framework_images_per_s": best["framework"],
        "plain_loop_images_per_s": best["plain"],
        "ratio_framework_over_plain": round(best["framework"] / best["plain"], 3),
        "rounds": results,
        "steps_timed": args.steps,
        "params": sum(p.numel() for p in model.parameters()),
    }
    write(args.out, out)


if __name__ == "__main__":
    main()
