from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from crnn_lit.config import CONFIG_DIR, register_resolvers

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

register_resolvers()


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The train config as `python -m crnn_lit.train <overrides>` would see it, writing into ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)  # makes ${hydra:runtime.output_dir} resolvable outside a Hydra app
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    if "length" in cfg.data.val:  # a rendered validation set: keep it small
        cfg.data.val.length = 32
    return cfg


# small, fast settings for running the real pipeline in tests
FAST = [
    "data.samples_per_epoch=64", "data.batch_size=16", "data.eval_batch_size=32", "data.num_workers=0",
    "logger=none", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
]


@pytest.fixture
def compose_cfg(tmp_path):
    return lambda overrides: compose_train(overrides, tmp_path)
