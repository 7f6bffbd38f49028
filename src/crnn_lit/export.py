"""Export a checkpoint as a logits-only model: ``python -m crnn_lit.export ckpt=… format=onnx|torchscript``.

The exported graph maps images (N, C, 32, W) → logits (T, N, C) with dynamic batch **and** width; decoding
(greedy, beam, lexicon) stays outside, in ``crnn_lit.transcription`` or the user's own code. A sidecar
``<file>.json`` holds everything needed to use the file without crnn_lit: charset (class i+1 = chars[i],
blank = 0), preprocessing step by step (decoding, colour, the width and resize rules, normalization, padding),
the frame-count formula and greedy decoding, under ``sidecar_version``. tests/onnx_client.py is such a reader.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig

from crnn_lit.checkpoint import load_model
from crnn_lit.config import ConfigError, check_required, resolve_ckpt
from crnn_lit.preprocess import Preprocess
from crnn_lit.task import task

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
# the sidecar's layout: 2 = preprocessing spelt out step by step (resize rule, rounding) and greedy decoding;
# files without the key are version 1 (charset, preprocessing values, frame count)
SIDECAR_VERSION = 2


def sidecar(loaded, fmt: str) -> dict:
    return {
        "sidecar_version": SIDECAR_VERSION,
        "format": fmt,
        "input": {"name": "images", "shape": ["N", "C", "H", "W"], "dtype": "float32"},
        "output": {"name": "logits", "shape": ["T", "N", "num_classes"], "note": "apply log_softmax over the last axis"},
        "charset": loaded.charset.to_dict(),
        "blank_index": 0,
        "num_classes": loaded.charset.num_classes,
        "preprocess": Preprocess.from_record(loaded.config).to_dict(),
        "output_length": loaded.model.output_length_spec(),
        "decode": {"greedy": "per frame the argmax class; merge repeats, then drop blanks; class i (i >= 1) is "
                             "charset.chars[i - 1]", "confidence": "exp(sum of the argmax log-probabilities over "
                             "the image's output_length(W) frames)"},
        # the model's default decoding (a crnn_lit.transcription.presets name and its settings): what
        # Recognizer.from_checkpoint(<this file>) reads with; none recorded = beam_lm as named there
        "reading": loaded.reading or {"decoder": "beam_lm"},
        "model": loaded.config,
    }


def export(ckpt: str, fmt: str, output: str | Path, opset: int = 17) -> Path:
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    loaded = load_model(ckpt)
    model = loaded.model.eval()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, loaded.config["channels"], loaded.config["height"], 100)
    if fmt == "onnx":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the LSTM's batch-size warning: batch is dynamic by design here
            torch.onnx.export(
                model, (example,), str(output), input_names=["images"], output_names=["logits"],
                dynamic_axes={"images": {0: "batch", 3: "width"}, "logits": {0: "frames", 1: "batch"}},
                opset_version=opset, dynamo=False,
            )
    else:
        with torch.no_grad():
            traced = torch.jit.trace(model, (example,), check_trace=False)
        traced.save(str(output))
    Path(str(output) + ".json").write_text(json.dumps(sidecar(loaded, fmt), indent=2) + "\n", encoding="utf-8")
    return output


@task("export")
def main(cfg: DictConfig) -> None:
    check_required(cfg)
    out = cfg.output or str(Path(cfg.paths.output_dir) / f"model{FORMATS.get(cfg.format, '')}")
    path = export(resolve_ckpt(cfg, use="weights"), cfg.format, out, cfg.opset)
    print(f"exported {cfg.format}: {path} (+ {path}.json)")


if __name__ == "__main__":
    main()
