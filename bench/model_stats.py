"""Parameters and FLOPs of every backbone × rnn config at 1×32×100, 37 classes, and of every transform stage alone
(what it adds to any of them) → bench/results/model_stats.json.

FLOPs are counted by torch.utils.flop_counter (a multiply-add = 2 FLOPs; convolutions, matmuls and the LSTM
gates' matmuls, elementwise ops not counted), forward pass, batch 1.

    python bench/model_stats.py
"""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from record import write
from torch.utils.flop_counter import FlopCounterMode

from crnn_lit.config import CONFIG_DIR, PROJECT_ROOT, compose_config, model_config
from crnn_lit.model import build_model


def nodes(backbone: str, rnn: str) -> tuple[dict, dict]:
    spec = model_config(compose_config([f"backbone={backbone}", f"rnn={rnn}"]))
    return spec["backbone"], spec["rnn"]


def main() -> None:
    rows = []
    for backbone in sorted(p.stem for p in (CONFIG_DIR / "backbone").glob("*.yaml")):
        for rnn in sorted(p.stem for p in (CONFIG_DIR / "rnn").glob("*.yaml")):
            model = build_model(*nodes(backbone, rnn), 37, 1).eval()
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                model(torch.zeros(1, 1, 32, 100))
            rows.append({
                "backbone": backbone, "rnn": rnn,
                "params": sum(p.numel() for p in model.parameters()),
                "backbone_params": sum(p.numel() for p in model.backbone.parameters()),
                "gflops_32x100": round(counter.get_total_flops() / 1e9, 3),
            })
            print(f"{backbone:10s} {rnn:13s} {rows[-1]['params']:>11,d} params  {rows[-1]['gflops_32x100']:.3f} GFLOPs")
    transforms = []
    for name in sorted(p.stem for p in (CONFIG_DIR / "transform").glob("*.yaml")):
        stage = instantiate(compose_config([f"transform={name}"]).transform, in_channels=1).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            stage(torch.zeros(1, 1, 32, 100))
        transforms.append({"transform": name, "params": sum(p.numel() for p in stage.parameters()),
                           "gflops_32x100": round(counter.get_total_flops() / 1e9, 3)})
        print(f"transform={name:6s} {transforms[-1]['params']:>11,d} params  {transforms[-1]['gflops_32x100']:.3f} GFLOPs")
    write(PROJECT_ROOT / "bench" / "results" / "model_stats.json",
          {"input": "1x32x100", "classes": 37, "models": rows, "transforms": transforms}, show=False)


if __name__ == "__main__":
    main()
