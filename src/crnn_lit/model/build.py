"""Build a CRNN from the records a checkpoint stores (``_target_`` + arguments for ``transform``, ``backbone``,
``rnn``) — without Hydra — and the named networks (``crnn``: the paper's, the light and the medium one, and
PP-OCRv6's small and tiny recognizers).

A record's ``_target_`` is looked up in ``PARTS``, an allow-list of our model classes: a checkpoint can name
only these, never an arbitrary callable (loading a file runs no code it names)."""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from crnn_lit.model.backbone import VGG, ResNet
from crnn_lit.model.crnn import CRNN
from crnn_lit.model.neck import ConvMixer, SVTRNeck
from crnn_lit.model.pplcnet import PPLCNetV4
from crnn_lit.model.rnn import SequenceModel
from crnn_lit.model.transform import TPS, NoTransform

# every class a record may name, by the dotted path records spell (those of checkpoints written so far)
PARTS = {f"{cls.__module__}.{cls.__qualname__}": cls
         for cls in (VGG, ResNet, PPLCNetV4, SequenceModel, SVTRNeck, ConvMixer, TPS, NoTransform)}

# PP-OCRv6's backbone layouts, as its released inference graphs have them (one [out_channels, height stride, SE]
# per block; `python -m crnn_lit.checkpoint import --format ppocr` reads the same from a graph)
_S, _T = [96, 1, True], [192, 1, True]
PPLCNET_V4_SMALL = {"stem": "hg", "stem_channels": [48, 96], "blocks": [
    _S, [96, 1, False], [96, 1, False], [192, 2, False], _T, [192, 1, False], _T, [192, 1, False], _T,
    [192, 1, False], [384, 2, False], [384, 1, True], [384, 1, False]]}
PPLCNET_V4_TINY = {"stem": "conv", "stem_channels": [24, 48], "blocks": [
    [48, 1, True], [48, 1, False], [96, 2, False], [96, 1, True], [96, 1, False], [160, 2, False], [160, 1, True],
    [160, 1, False], [160, 1, False]]}


def _record(cls, **values) -> dict:
    """A part's full record: its ``_target_``, every argument with a default (the class's, where the preset says
    nothing: one copy of each value) but the input size the model around it decides, then ``values``."""
    params = inspect.signature(cls.__init__).parameters.values()
    defaults = {p.name: list(p.default) if isinstance(p.default, tuple) else p.default for p in params
                if p.default is not p.empty and p.name not in ("in_channels", "input_size")}
    return {"_target_": f"{cls.__module__}.{cls.__qualname__}", **defaults, **values}


# The named parts, as records: one copy of each preset, which conf/backbone/<name>.yaml and conf/rnn/<name>.yaml
# compose for training (crnn_lit.config.register_python_configs) and a checkpoint stores in full.
BACKBONES: dict[str, dict] = {
    # the paper's CNN (Table 1): 7 convs 64-128-256-256-512-512-512, BN after conv5/6 (VGG's own defaults)
    "vgg": {"_target_": "crnn_lit.model.backbone.VGG", "channels": list(VGG.PAPER_CHANNELS), "batch_norm": [5, 6]},
    # CPU-light: the paper's layout, channels cut to 1/2 (early) and 3/8 (late); BN after every conv escapes the
    # CTC blank plateau much sooner (bench/results/model_stats.json)
    "vgg_light": {"_target_": "crnn_lit.model.backbone.VGG", "channels": [32, 64, 96, 96, 192, 192, 192],
                  "batch_norm": [1, 2, 3, 4, 5, 6, 7]},
    # mid-size, for longer CPU runs: ~3/4 of the paper's early and 1/2 of its late channels, BN after every conv
    "vgg_medium": {"_target_": "crnn_lit.model.backbone.VGG", "channels": [48, 96, 160, 160, 256, 256, 256],
                   "batch_norm": [1, 2, 3, 4, 5, 6, 7]},
    # deep-text-recognition-benchmark's "VGG" (None-VGG-BiLSTM-CTC; EasyOCR's generation-2 recognizers): the
    # paper's layers with DTRB's height-only pools (kernel (2, 1), no padding: T = floor(W/4) - 1) and the feature
    # rows averaged (any input height); imported DTRB/EasyOCR weights load into it (crnn_lit.model.dtrb)
    "vgg_dtrb": {"_target_": "crnn_lit.model.backbone.VGG", "channels": list(VGG.PAPER_CHANNELS),
                 "batch_norm": [5, 6], "height_pool": "dtrb", "height_reduce": "mean"},
    # ResNet-style extractor (as DTRB/FAN use for scene text): stages of 1-2-5-3 basic blocks (ResNet's defaults)
    "resnet": _record(ResNet),
    # PP-OCRv6's backbones (PPLCNetV4) in the folded layout imported weights load into; input height 48, RGB/BGR
    # (preprocess=ppocr). batch_norm=true adds BN after every conv, for training one from scratch
    "pplcnet_v4_small": {"_target_": "crnn_lit.model.pplcnet.PPLCNetV4", **PPLCNET_V4_SMALL, "batch_norm": False},
    "pplcnet_v4_tiny": {"_target_": "crnn_lit.model.pplcnet.PPLCNetV4", **PPLCNET_V4_TINY, "batch_norm": False},
}
RNNS: dict[str, dict] = {
    # the paper's sequence layers: 2 stacked BiLSTMs, 256 units per direction, 2·hidden → hidden between layers
    # (gives the paper's 8.3 M parameters)
    "bilstm": {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": 256, "num_layers": 2,
               "project": True, "dropout": 0.0},
    # light, for the CPU models: 2 × BiLSTM, 128 units per direction
    "bilstm_light": {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": 128,
                     "num_layers": 2, "project": True, "dropout": 0.0},
    # stacked bidirectional GRUs (fewer parameters than LSTMs at equal width), otherwise the paper's layout
    "bigru": _record(SequenceModel, cell="gru"),
    # PP-OCRv6 small's light SVTR neck: 2 transformer blocks of 120 dims, 8 heads, a 7-frame local mixer
    "svtr": {"_target_": "crnn_lit.model.neck.SVTRNeck", "dims": 120, "depth": 2, "heads": 8, "mlp_ratio": 2.0,
             "kernel": 7},
    # PP-OCRv6 tiny's neck: depthwise conv over 5 frames + pointwise conv, then 80 dims (its head's low-rank half)
    "conv_mixer": {"_target_": "crnn_lit.model.neck.ConvMixer", "kernel": 5, "project_to": 80},
}
# The transformation stages besides none: DTRB's TPS (TPS's defaults), and one with a localization network at 1/4
# of DTRB's widths (1/16 of its FLOPs: DTRB's costs 0.35 GFLOPs at 32×100, more than the whole light CRNN's 0.20;
# bench/results/model_stats.json)
TRANSFORMS: dict[str, dict] = {"tps": _record(TPS), "tps_light": _record(TPS, channels=[16, 32, 64, 128], hidden=64)}
# (backbone, rnn, input height) of each named network; "light" is every shipped CRNN's (data/pretrained/*.pt)
NETWORKS = {"paper": ("vgg", "bilstm", 32), "light": ("vgg_light", "bilstm_light", 32),
            "medium": ("vgg_medium", "bilstm", 32),
            "ppocr_v6_small": ("pplcnet_v4_small", "svtr", 48), "ppocr_v6_tiny": ("pplcnet_v4_tiny", "conv_mixer", 48)}


def part(record: Mapping, **given):
    """The model part a record describes: its ``_target_`` (one of ``PARTS``) called with its arguments and
    ``given`` (what the model around it decides: ``in_channels``, ``input_size``)."""
    kwargs = dict(record)
    target = kwargs.pop("_target_", None)
    if target not in PARTS:
        raise ValueError(f"unknown model part {target!r}: a record names one of {', '.join(sorted(PARTS))}")
    return PARTS[target](**kwargs, **given)


def build_model(backbone: Mapping, rnn: Mapping, num_classes: int, in_channels: int,
                transform: Mapping | None = None) -> CRNN:
    """``backbone``/``rnn``/``transform`` are records (``_target_`` + arguments, see ``part``); input size of
    the rnn follows the CNN. ``transform`` None: no transformation stage (what a checkpoint recorded before the
    group existed)."""
    stage = part(transform, in_channels=in_channels) if transform else None
    cnn = part(backbone, in_channels=in_channels)
    rectified = getattr(stage, "rectified_size", None)
    if rectified and getattr(cnn, "height", rectified[0]) != rectified[0]:
        raise ValueError(f"transform.rectified_size {list(rectified)} must have the backbone's input height "
                         f"{cnn.height}")
    seq = part(rnn, input_size=cnn.out_channels)
    return CRNN(cnn, seq, num_classes, stage)


def network_records(name: str = "light", height: int | None = None) -> dict:
    """The ``backbone`` and ``rnn`` records of a named network (``NETWORKS``) at input ``height`` (default: the
    network's own, 32 for the CRNNs, 48 for PP-OCR's)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; named ones: {', '.join(NETWORKS)}")
    backbone, rnn, own_height = NETWORKS[name]
    return {"backbone": {**BACKBONES[backbone], "height": height or own_height}, "rnn": dict(RNNS[rnn])}


def crnn(name: str, num_classes: int, in_channels: int = 1, height: int | None = None) -> CRNN:
    """A named network, untrained: ``paper`` (Shi et al.'s, 8.3 M parameters), ``light`` (the shipped models'),
    ``medium``, ``ppocr_v6_small`` and ``ppocr_v6_tiny`` (PP-OCRv6's recognizers: 3 channels, height 48)."""
    records = network_records(name, height)
    return build_model(records["backbone"], records["rnn"], num_classes, in_channels)


def crnn_paper(num_classes: int, in_channels: int = 1) -> CRNN:
    """The paper's network: VGG 64-…-512 + 2 × BiLSTM-256."""
    return crnn("paper", num_classes, in_channels)


def crnn_light(num_classes: int, in_channels: int = 1) -> CRNN:
    """The shipped models' network: VGG 32-…-192, BN after every conv, + 2 × BiLSTM-128."""
    return crnn("light", num_classes, in_channels)


def crnn_medium(num_classes: int, in_channels: int = 1) -> CRNN:
    """The mid-size network: VGG 48-…-256, BN after every conv, + 2 × BiLSTM-256."""
    return crnn("medium", num_classes, in_channels)


def ppocr_v6_small(num_classes: int, in_channels: int = 3) -> CRNN:
    """PP-OCRv6 small's recognizer: PPLCNetV4 (small) + the light SVTR neck, input 3×48×W."""
    return crnn("ppocr_v6_small", num_classes, in_channels)


def ppocr_v6_tiny(num_classes: int, in_channels: int = 3) -> CRNN:
    """PP-OCRv6 tiny's recognizer: PPLCNetV4 (tiny) + its conv mixer neck, input 3×48×W."""
    return crnn("ppocr_v6_tiny", num_classes, in_channels)
