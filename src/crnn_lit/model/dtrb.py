"""deep-text-recognition-benchmark (DTRB) and EasyOCR recognizers → crnn_lit models, exactly.

DTRB's "None-VGG-BiLSTM-CTC" (EasyOCR's generation-2 recognizers, e.g. ``english_g2``) is crnn_lit's ``VGG``
with ``height_pool="dtrb"`` and ``height_reduce="mean"`` followed by our ``SequenceModel``:

* ``FeatureExtraction.ConvNet.<i>`` has the same layer list as ``backbone.features.<i>`` (same indices);
* ``SequenceModeling.<k>`` is a BiLSTM followed by ``Linear(2h → h)``: layer 0's linear is our projection;
  layer 1's linear and ``Prediction`` (``Linear(h → C)``) are two affine maps in a row, folded into our head:
  ``head.W = P.W · L.W``, ``head.b = P.W · L.b + P.b`` (computed in float64).

Everything is inferred from the weight shapes (channels, input channels, hidden size, classes). What does
not map — a TPS transformation, an attention decoder, the RCNN or ResNet extractors — is refused by name.
Files are read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

# conv layers of the DTRB VGG extractor, by index in its nn.Sequential (as in ours)
_CONVS = (0, 3, 6, 8, 11, 14, 18)
_BATCH_NORMS = {11: 12, 14: 15}  # conv5/conv6 are followed by BN (bias-free convs)


class ImportRefused(ValueError):
    """The checkpoint holds a part crnn_lit cannot represent exactly; the message names it."""


def _strip(state: dict) -> dict:
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _refuse_unmappable(state: dict) -> None:
    if any(k.startswith("Transformation.") for k in state):
        raise ImportRefused("the checkpoint has a TPS transformation (Transformation.*): only 'None' "
                            "transformations map onto crnn_lit")
    if any(k.startswith(("Prediction.attention_cell", "Prediction.generator")) for k in state):
        raise ImportRefused("the checkpoint has an attention decoder (Prediction.attention_cell): only CTC "
                            "prediction maps onto crnn_lit")
    conv = [k for k in state if k.startswith("FeatureExtraction.")]
    if any(".rcl" in k or "RCL" in k for k in conv):
        raise ImportRefused("the checkpoint has DTRB's RCNN feature extractor: only VGG maps onto crnn_lit")
    if any(k.startswith("FeatureExtraction.ConvNet.conv0_1") or ".layer1." in k for k in conv):
        raise ImportRefused("the checkpoint has DTRB's ResNet feature extractor: only VGG maps onto crnn_lit (yet)")
    expected = {f"FeatureExtraction.ConvNet.{i}.weight" for i in _CONVS}
    missing = sorted(expected - set(state))
    if missing:
        raise ImportRefused(f"not a DTRB VGG feature extractor: missing {missing[:3]}")
    if not any(k.startswith("SequenceModeling.") for k in state):
        raise ImportRefused("the checkpoint has no BiLSTM (SequenceModeling 'None'): not supported")
    if "Prediction.weight" not in state:
        raise ImportRefused("no CTC prediction layer (Prediction.weight) in the checkpoint")


def convert_dtrb(state: dict, height: int) -> tuple[dict, dict, int]:
    """(crnn_lit state dict, model config, number of classes) for a DTRB/EasyOCR None-VGG-BiLSTM-CTC state."""
    state = _strip(state)
    _refuse_unmappable(state)
    w = {i: state[f"FeatureExtraction.ConvNet.{i}.weight"] for i in _CONVS}
    channels = [int(w[i].shape[0]) for i in _CONVS]
    in_channels = int(w[0].shape[1])
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("SequenceModeling.")})
    if layers != list(range(len(layers))) or len(layers) < 1:
        raise ImportRefused(f"unexpected SequenceModeling layers {layers}")
    hidden = int(state["SequenceModeling.0.rnn.weight_hh_l0"].shape[1])
    for k in layers:
        if int(state[f"SequenceModeling.{k}.linear.weight"].shape[0]) != hidden:
            raise ImportRefused(f"SequenceModeling.{k}.linear maps to {state[f'SequenceModeling.{k}.linear.weight'].shape[0]} "
                                f"features, not the hidden size {hidden}: not a DTRB BiLSTM stack")
    out = {}
    for k, v in state.items():
        if k.startswith("FeatureExtraction.ConvNet."):
            out["backbone.features." + k.removeprefix("FeatureExtraction.ConvNet.")] = v
        elif k.startswith("SequenceModeling.") and ".rnn." in k:
            out[k.replace("SequenceModeling.", "rnn.layers.", 1)] = v
    last = layers[-1]
    for k in layers[:-1]:  # inner layers' 2h → h linears are our projections
        for p in ("weight", "bias"):
            out[f"rnn.layers.{k}.project.{p}"] = state[f"SequenceModeling.{k}.linear.{p}"]
    lw = state[f"SequenceModeling.{last}.linear.weight"].double()
    lb = state[f"SequenceModeling.{last}.linear.bias"].double()
    pw, pb = state["Prediction.weight"].double(), state["Prediction.bias"].double()
    out["head.weight"] = (pw @ lw).float()
    out["head.bias"] = (pw @ lb + pb).float()
    num_classes = int(pw.shape[0])
    config = {
        "backbone": {"_target_": "crnn_lit.model.backbone.VGG", "channels": channels, "batch_norm": [5, 6],
                     "height": height, "height_pool": "dtrb", "height_reduce": "mean"},
        "rnn": {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": hidden,
                "num_layers": len(layers), "project": True, "dropout": 0.0},
        "height": height, "channels": in_channels,
    }
    return out, config, num_classes


def load_state(path: str | Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a pickle that needs code execution, or not a torch file
        raise ImportRefused(f"cannot read {path} as weights-only data: {err}") from err


# EasyOCR's character lists (its config.py: number + symbol + characters), by model name
EASYOCR_CHARSETS = {
    "english_g2": "0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
}
