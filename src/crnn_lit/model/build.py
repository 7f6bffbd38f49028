"""Build a CRNN from the records a checkpoint stores (``_target_`` + arguments for ``transform``, ``backbone``,
``rnn``) — without Hydra — and the named networks (:func:`crnn`: the paper's, the light and the medium one).

A record's ``_target_`` is looked up in :data:`PARTS`, an allow-list of our model classes: a checkpoint can name
only these, never an arbitrary callable (loading a file runs no code it names)."""

from __future__ import annotations

from collections.abc import Mapping

from crnn_lit.model.backbone import VGG, ResNet
from crnn_lit.model.crnn import CRNN
from crnn_lit.model.rnn import SequenceModel
from crnn_lit.model.transform import TPS, NoTransform

# every class a record may name, by the dotted path records spell (those of checkpoints written so far)
PARTS = {f"{cls.__module__}.{cls.__qualname__}": cls for cls in (VGG, ResNet, SequenceModel, TPS, NoTransform)}

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
}
RNNS: dict[str, dict] = {
    # the paper's sequence layers: 2 stacked BiLSTMs, 256 units per direction, 2·hidden → hidden between layers
    # (gives the paper's 8.3 M parameters)
    "bilstm": {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": 256, "num_layers": 2,
               "project": True, "dropout": 0.0},
    # light, for the CPU models: 2 × BiLSTM, 128 units per direction
    "bilstm_light": {"_target_": "crnn_lit.model.rnn.SequenceModel", "cell": "lstm", "hidden_size": 128,
                     "num_layers": 2, "project": True, "dropout": 0.0},
}
# (backbone, rnn) of each named network; "light" is every shipped model's (data/pretrained/*.pt)
NETWORKS = {"paper": ("vgg", "bilstm"), "light": ("vgg_light", "bilstm_light"), "medium": ("vgg_medium", "bilstm")}


def part(record: Mapping, **given):
    """The model part a record describes: its ``_target_`` (one of :data:`PARTS`) called with its arguments and
    ``given`` (what the model around it decides: ``in_channels``, ``input_size``)."""
    kwargs = dict(record)
    target = kwargs.pop("_target_", None)
    if target not in PARTS:
        raise ValueError(f"unknown model part {target!r}: a record names one of {', '.join(sorted(PARTS))}")
    return PARTS[target](**kwargs, **given)


def build_model(backbone: Mapping, rnn: Mapping, num_classes: int, in_channels: int,
                transform: Mapping | None = None) -> CRNN:
    """``backbone``/``rnn``/``transform`` are records (``_target_`` + arguments, see :func:`part`); input size of
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


def network_records(name: str = "light", height: int = 32) -> dict:
    """The ``backbone`` and ``rnn`` records of a named network (:data:`NETWORKS`) at input ``height``."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; named ones: {', '.join(NETWORKS)}")
    backbone, rnn = NETWORKS[name]
    return {"backbone": {**BACKBONES[backbone], "height": height}, "rnn": dict(RNNS[rnn])}


def crnn(name: str, num_classes: int, in_channels: int = 1, height: int = 32) -> CRNN:
    """A named network, untrained: ``paper`` (Shi et al.'s, 8.3 M parameters), ``light`` (the shipped models'),
    ``medium``."""
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
