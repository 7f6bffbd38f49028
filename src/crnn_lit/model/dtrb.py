"""deep-text-recognition-benchmark (DTRB) and EasyOCR recognizers → crnn_lit models, exactly.

DTRB names a model by its four stages, transformation-features-sequence-prediction. Those that map:
``{None,TPS}-{VGG,ResNet}-BiLSTM-CTC`` (EasyOCR's generation-2 recognizers, e.g. ``english_g2``, are
None-VGG-BiLSTM-CTC).

* ``Transformation`` (TPS) is crnn_lit's ``transform.TPS`` with DTRB's fixed rectified size and sampling
  convention (``align_corners=True``): ``LocalizationNetwork.conv.<i>`` is ``transform.localization.<i>`` (same
  indices), ``localization_fc1.0`` / ``localization_fc2`` are ``transform.regressor.0`` / ``.2``. The
  ``GridGenerator`` buffers (Δ_C⁻¹ and the grid's rows P̂) follow from F and the size alone: they are checked
  against ours and not stored.
* ``FeatureExtraction`` "VGG" is our ``VGG`` with ``height_pool="dtrb"`` and ``height_reduce="mean"``
  (``ConvNet.<i>`` = ``backbone.features.<i>``, same indices); "ResNet" is our ``ResNet`` with
  ``stem_channels=[32, 64]`` and stages (128, 256, 512, 512) × (1, 2, 5, 3) blocks (module names mapped in forward
  order, ``_resnet_names``).
* ``SequenceModeling.<k>`` is a BiLSTM followed by ``Linear(2h → h)``: layer 0's linear is our projection;
  layer 1's linear and ``Prediction`` (``Linear(h → C)``) are two affine maps in a row, folded into our head:
  ``head.W = P.W · L.W``, ``head.b = P.W · L.b + P.b`` (computed in float64).

Everything is inferred from the weight shapes (channels, input channels, hidden size, classes, fiducial points,
rectified width). What does not map — an attention decoder, the RCNN extractor, no BiLSTM — is refused by name.
Files are read with ``torch.load(weights_only=True)``: no pickled code runs.
"""

from __future__ import annotations

from pathlib import Path

import torch

from crnn_lit.model.build import BACKBONES

# conv layers of the DTRB VGG extractor, by index in its nn.Sequential (as in ours)
_CONVS = (0, 3, 6, 8, 11, 14, 18)
_BATCH_NORMS = {11: 12, 14: 15}  # conv5/conv6 are followed by BN (bias-free convs)
_TPS = "Transformation."
_RESNET = "FeatureExtraction.ConvNet.conv0_1.weight"
# a DTRB BasicBlock's modules → ours (body: conv, BN, ReLU, conv, BN; shortcut: the 1×1 projection)
_BLOCK = {"conv1": "body.0", "bn1": "body.1", "conv2": "body.3", "bn2": "body.4", "downsample": "shortcut"}


class ImportRefused(ValueError):
    """The checkpoint holds a part crnn_lit cannot represent exactly; the message names it."""


def _strip(state: dict) -> dict:
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


def _refuse_unmappable(state: dict) -> None:
    if any(k.startswith(("Prediction.attention_cell", "Prediction.generator")) for k in state):
        raise ImportRefused("the checkpoint has an attention decoder (Prediction.attention_cell): only CTC "
                            "prediction maps onto crnn_lit")
    conv = [k for k in state if k.startswith("FeatureExtraction.")]
    if any(".rcl" in k or "RCL" in k for k in conv):
        raise ImportRefused("the checkpoint has DTRB's RCNN feature extractor: only VGG and ResNet map onto crnn_lit")
    resnet = _RESNET in state
    convs = ([f"conv{i}" for i in ("0_1", "0_2", 1, 2, 3, "4_1", "4_2")] + [f"layer{s}.0.conv1" for s in (1, 2, 3, 4)]
             if resnet else _CONVS)
    missing = [f"FeatureExtraction.ConvNet.{c}.weight" for c in convs]
    missing = [k for k in missing if k not in state or state[k].ndim != 4]
    if missing:
        raise ImportRefused(f"not a DTRB {'ResNet' if resnet else 'VGG'} feature extractor: missing conv weights "
                            f"{missing[:3]}")
    if not any(k.startswith("SequenceModeling.") for k in state):
        raise ImportRefused("the checkpoint has no BiLSTM (SequenceModeling 'None'): not supported")
    if "Prediction.weight" not in state:
        raise ImportRefused("no CTC prediction layer (Prediction.weight) in the checkpoint")


def _vgg(state: dict, height: int) -> tuple[dict, dict]:
    out = {"backbone.features." + k.removeprefix("FeatureExtraction.ConvNet."): v
           for k, v in state.items() if k.startswith("FeatureExtraction.ConvNet.")}
    config = {**BACKBONES["vgg_dtrb"], "height": height,
              "channels": [int(state[f"FeatureExtraction.ConvNet.{i}.weight"].shape[0]) for i in _CONVS]}
    return out, config


def _resnet_names(blocks: list[int]) -> dict[str, int]:
    """DTRB ResNet module → index in our ResNet's ``features``, walking both in forward order (ours spends three
    entries on a conv+BN+ReLU, one on a pool or a block)."""
    plan = ["0_1", "0_2", "pool", 1, "1", "pool", 2, "2", "pool", 3, "3", 4, "4_1", "4_2"]
    names, i = {}, 0
    for step in plan:
        if step == "pool":
            i += 1
        elif isinstance(step, int):  # a stage: layer<step>.<j>
            for j in range(blocks[step - 1]):
                names[f"layer{step}.{j}"], i = i, i + 1
        else:
            names[f"conv{step}"], names[f"bn{step}"], i = i, i + 1, i + 3
    return names


def _resnet(state: dict, height: int) -> tuple[dict, dict]:
    if height != 32:
        raise ImportRefused(f"DTRB's ResNet extractor maps onto crnn_lit at input height 32 only, not {height}")
    prefix = "FeatureExtraction.ConvNet."
    blocks = [len({k.split(".")[3] for k in state if k.startswith(f"{prefix}layer{s}.")}) for s in (1, 2, 3, 4)]
    if min(blocks) < 1:
        raise ImportRefused(f"not a DTRB ResNet feature extractor: blocks per stage {blocks}")
    names = _resnet_names(blocks)
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        parts = key.removeprefix(prefix).split(".")
        if parts[0].startswith("layer"):  # layer<s>.<j>.<module>[.<i>].<param>
            module, rest = f"{parts[0]}.{parts[1]}", [_BLOCK.get(parts[2], parts[2]), *parts[3:]]
        else:
            module, rest = parts[0], parts[1:]
        if module not in names:
            raise ImportRefused(f"not a DTRB ResNet feature extractor: unexpected {key}")
        out[".".join(["backbone.features", str(names[module]), *rest])] = value
    width = {m: int(state[f"{prefix}{m}.weight"].shape[0])
             for m in ("conv0_1", "conv0_2", *(f"layer{s}.0.conv1" for s in (1, 2, 3, 4)))}
    config = {"_target_": "crnn_lit.model.backbone.ResNet", "height": height, "blocks": blocks,
              "stem_channels": [width["conv0_1"], width["conv0_2"]],
              "channels": [width[f"layer{s}.0.conv1"] for s in (1, 2, 3, 4)]}
    return out, config


def _tps(state: dict, height: int, width: int) -> tuple[dict, dict]:
    """Our TPS stage (weights, config) from DTRB's ``Transformation.*``; ``width``: the rectified width when the
    file has no ``GridGenerator.P_hat`` (DTRB before its grids became buffers), else read from it."""
    from crnn_lit.model.transform import fiducial_points, grid_basis, tps_system_inverse

    loc = f"{_TPS}LocalizationNetwork."
    fc2 = state.get(f"{loc}localization_fc2.weight")
    convs = sorted(int(k.split(".")[3]) for k in state if k.startswith(f"{loc}conv.") and k.endswith(".weight")
                   and state[k].ndim == 4)
    if fc2 is None or f"{loc}localization_fc1.0.weight" not in state or not convs:
        raise ImportRefused("the checkpoint's TPS transformation (Transformation.*) lacks DTRB's localization "
                            "network (conv, localization_fc1, localization_fc2)")
    fiducials = int(fc2.shape[0]) // 2
    p_hat = state.get(f"{_TPS}GridGenerator.P_hat")
    if p_hat is not None:
        if p_hat.shape[0] % height:
            raise ImportRefused(f"the TPS grid has {p_hat.shape[0]} points: not a multiple of the height {height}")
        width = p_hat.shape[0] // height
    points = fiducial_points(fiducials)
    for name, ours in (("inv_delta_C", tps_system_inverse(points)), ("P_hat", grid_basis(height, width, points))):
        theirs = state.get(f"{_TPS}GridGenerator.{name}")
        if theirs is not None and (theirs.shape != ours.shape or not torch.allclose(theirs.double(), ours, atol=1e-4)):
            raise ImportRefused(f"the TPS grid (GridGenerator.{name}) is not DTRB's for F={fiducials} at "
                                f"{height}×{width}")
    out = {}
    for key, value in state.items():
        if key.startswith(f"{loc}conv."):
            out["transform.localization." + key.removeprefix(f"{loc}conv.")] = value
        elif key.startswith(f"{loc}localization_fc1.0."):
            out["transform.regressor.0." + key.removeprefix(f"{loc}localization_fc1.0.")] = value
        elif key.startswith(f"{loc}localization_fc2."):
            out["transform.regressor.2." + key.removeprefix(f"{loc}localization_fc2.")] = value
    config = {"_target_": "crnn_lit.model.transform.TPS", "fiducials": fiducials, "rectified_size": [height, width],
              "channels": [int(state[f"{loc}conv.{i}.weight"].shape[0]) for i in convs],
              "hidden": int(state[f"{loc}localization_fc1.0.weight"].shape[0]), "align_corners": True}
    return out, config


def convert_dtrb(state: dict, height: int, width: int = 100) -> tuple[dict, dict, int]:
    """(crnn_lit state dict, model config, number of classes) for a DTRB/EasyOCR ``{None,TPS}-{VGG,ResNet}-BiLSTM-CTC``
    state; ``height``: the input height, ``width``: DTRB's imgW (a TPS's rectified width, if its file lacks the grid)."""
    state = _strip(state)
    _refuse_unmappable(state)
    first_conv = state[_RESNET] if _RESNET in state else state["FeatureExtraction.ConvNet.0.weight"]
    in_channels = int(first_conv.shape[1])
    out, backbone = (_resnet if _RESNET in state else _vgg)(state, height)
    transform = {"_target_": "crnn_lit.model.transform.NoTransform"}
    if any(k.startswith(_TPS) for k in state):
        tps, transform = _tps(state, height, width)
        out |= tps
    layers = sorted({int(k.split(".")[1]) for k in state if k.startswith("SequenceModeling.")})
    if layers != list(range(len(layers))) or len(layers) < 1:
        raise ImportRefused(f"unexpected SequenceModeling layers {layers}")
    hidden = int(state["SequenceModeling.0.rnn.weight_hh_l0"].shape[1])
    for k in layers:
        if int(state[f"SequenceModeling.{k}.linear.weight"].shape[0]) != hidden:
            raise ImportRefused(f"SequenceModeling.{k}.linear maps to {state[f'SequenceModeling.{k}.linear.weight'].shape[0]} "
                                f"features, not the hidden size {hidden}: not a DTRB BiLSTM stack")
    out |= {k.replace("SequenceModeling.", "rnn.layers.", 1): v
            for k, v in state.items() if k.startswith("SequenceModeling.") and ".rnn." in k}
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
        "transform": transform,
        "backbone": backbone,
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
