"""Hydra/OmegaConf plumbing shared by the entry points."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# src/crnn_lit/config.py → the checkout root (where conf/ and data/ live in the repository)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# A built wheel carries conf/ and the runtime assets of data/ inside the package, as crnn_lit/conf and
# crnn_lit/assets (pyproject's package-dir mapping); a checkout run (PYTHONPATH=src, editable install) has neither
# and reads the repository's own folders, so there is one copy of each file in git.
_PACKAGE = Path(str(files("crnn_lit")))  # an installed wheel is unzipped: a real folder Hydra can search
INSTALLED = (_PACKAGE / "conf").is_dir()
CONFIG_DIR = _PACKAGE / "conf" if INSTALLED else PROJECT_ROOT / "conf"
ASSETS_DIR = _PACKAGE / "assets" if INSTALLED else PROJECT_ROOT / "data"


def root_dir() -> Path:
    """Where ``outputs/`` and repository-relative paths (``../shared/data``) start: the checkout when run from one,
    else the working directory (an installed package's folder is no place for run outputs)."""
    return Path.cwd() if INSTALLED else PROJECT_ROOT


def register_resolvers() -> None:
    """``${crnn_lit_root:}`` = ``root_dir()`` and ``${crnn_lit_assets:}`` = the shipped runtime assets, so paths in
    conf/ work from any working directory; ``${metric_tag:val/cer}`` = ``cer``, a metric's name fit for a file name;
    ``${slurm_count:value,key}``: see :func:`slurm_count`."""
    if not OmegaConf.has_resolver("crnn_lit_root"):
        OmegaConf.register_new_resolver("crnn_lit_root", lambda: str(root_dir()))
    if not OmegaConf.has_resolver("crnn_lit_assets"):
        OmegaConf.register_new_resolver("crnn_lit_assets", lambda: str(ASSETS_DIR))
    if not OmegaConf.has_resolver("metric_tag"):
        OmegaConf.register_new_resolver("metric_tag", lambda name: str(name).rsplit("/", 1)[-1])
    if not OmegaConf.has_resolver("slurm_count"):
        OmegaConf.register_new_resolver("slurm_count", slurm_count)


def slurm_count(value, key: str) -> int:
    """``${slurm_count:${trainer.devices},trainer.devices}``: a count the SLURM launcher needs as a positive number.
    A job asks for its nodes, tasks and GPUs per node when it is submitted; -1 ("all visible GPUs") means nothing
    there, and a guessed default would wait in the queue for nodes that do not exist."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hydra/launcher=slurm needs {key} as a positive number (SLURM reserves nodes, tasks and "
                          f"GPUs per node at submission), got {value!r}: give it, e.g. {key}=8")
    return value


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
