"""Build a CRNN from the ``backbone`` and ``rnn`` config groups (the same dicts a checkpoint stores)."""

from __future__ import annotations

from collections.abc import Mapping

from hydra.utils import instantiate

from crnn_lit.model.crnn import CRNN


def build_model(backbone: Mapping, rnn: Mapping, num_classes: int, in_channels: int) -> CRNN:
    """``backbone``/``rnn`` are Hydra node dicts (``_target_`` + arguments); input size of the rnn follows the CNN."""
    cnn = instantiate(dict(backbone), in_channels=in_channels)
    seq = instantiate(dict(rnn), input_size=cnn.out_channels)
    return CRNN(cnn, seq, num_classes)


def model_config(cfg) -> dict:
    """The part of a composed train config that defines the network — what every checkpoint stores."""
    from omegaconf import OmegaConf

    return {
        "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
        "rnn": OmegaConf.to_container(cfg.rnn, resolve=True),
        # the input spec, so inference and export resize images exactly as training did
        **instantiate(cfg.preprocess).record(),
    }
