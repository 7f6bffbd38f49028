"""Build a CRNN from the ``transform``, ``backbone`` and ``rnn`` config groups (the same dicts a checkpoint stores)."""

from __future__ import annotations

from collections.abc import Mapping

from hydra.utils import instantiate

from crnn_lit.model.crnn import CRNN


def build_model(backbone: Mapping, rnn: Mapping, num_classes: int, in_channels: int,
                transform: Mapping | None = None) -> CRNN:
    """``backbone``/``rnn``/``transform`` are Hydra node dicts (``_target_`` + arguments); input size of the rnn follows
    the CNN. ``transform`` None: no transformation stage (what a checkpoint recorded before the group existed)."""
    stage = instantiate(dict(transform), in_channels=in_channels) if transform else None
    cnn = instantiate(dict(backbone), in_channels=in_channels)
    rectified = getattr(stage, "rectified_size", None)
    if rectified and getattr(cnn, "height", rectified[0]) != rectified[0]:
        raise ValueError(f"transform.rectified_size {list(rectified)} must have the backbone's input height "
                         f"{cnn.height}")
    seq = instantiate(dict(rnn), input_size=cnn.out_channels)
    return CRNN(cnn, seq, num_classes, stage)


def model_config(cfg) -> dict:
    """The part of a composed train config that defines the network — what every checkpoint stores."""
    from omegaconf import OmegaConf

    return {
        "transform": OmegaConf.to_container(cfg.transform, resolve=True),
        "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
        "rnn": OmegaConf.to_container(cfg.rnn, resolve=True),
        # the input spec, so inference and export resize images exactly as training did
        **instantiate(cfg.preprocess).record(),
    }
