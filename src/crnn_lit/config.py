"""Hydra/OmegaConf plumbing shared by the entry points."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# src/crnn_lit/config.py → the checkout root (where conf/ and data/ live)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = PROJECT_ROOT / "conf"


def register_resolvers() -> None:
    """``${crnn_lit_root:}`` = the checkout root, so paths in conf/ work from any working directory;
    ``${metric_tag:val/cer}`` = ``cer``, a metric's name fit for a file name."""
    if not OmegaConf.has_resolver("crnn_lit_root"):
        OmegaConf.register_new_resolver("crnn_lit_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("metric_tag"):
        OmegaConf.register_new_resolver("metric_tag", lambda name: str(name).rsplit("/", 1)[-1])


class ConfigError(ValueError):
    """A configuration that cannot run, with what to set instead."""


def _missing_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Keys set to ``???``, found without resolving interpolations (those pointing at them would raise)."""
    found = []
    for key in cfg:
        if OmegaConf.is_missing(cfg, key):
            found.append(f"{prefix}{key}")
        elif not OmegaConf.is_interpolation(cfg, key) and isinstance(cfg._get_node(key), DictConfig):
            found += _missing_keys(cfg._get_node(key), f"{prefix}{key}.")
    return found


def check_required(cfg: DictConfig) -> None:
    """Fail early, naming every required value (``???``) that is still unset, e.g. ``data.root``."""
    missing = sorted(_missing_keys(cfg))
    if missing:
        examples = " ".join(f"{k}=..." for k in missing)
        raise ConfigError(f"required config value(s) not set: {', '.join(missing)}. "
                         f"Give them on the command line, e.g. `python -m crnn_lit.train ... {examples}`")


def compose_config(overrides: list[str] | tuple[str, ...] = (), config_name: str = "train",
                   return_hydra_config: bool = False) -> DictConfig:
    """The config an entry point would see for ``overrides``, composed outside a Hydra app (tests, bench/)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_resolvers()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def resolve_ckpt(cfg: DictConfig) -> str:
    """The checkpoint an evaluate/predict/export config names: ``ckpt=pretrained`` (their default) is the shipped
    model ``<paths.pretrained_dir>/<pretrained>.pt``; any other value is a path, returned as given."""
    if cfg.ckpt == "pretrained":
        return str(Path(cfg.paths.pretrained_dir) / f"{cfg.pretrained}.pt")
    return str(cfg.ckpt)
