"""Hydra/OmegaConf plumbing shared by the entry points."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


SHARED_DATA_ENV = "CRNN_LIT_DATA"
# what paths under an unknown shared data folder read as, so every message naming one says what to set
SHARED_DATA_UNSET = f"<{SHARED_DATA_ENV} not set>"


def shared_data_dir() -> str:
    """The shared real-data folder (``benchmarks/``, ``lexicons/``, ``real_train/``): ``$CRNN_LIT_DATA``; without it
    a checkout uses the folder beside it, ``<checkout>/../shared/data``, and an installed package has none — it is
    never guessed from the working folder, and paths under it read ``<CRNN_LIT_DATA not set>/…``."""
    if os.environ.get(SHARED_DATA_ENV):
        return os.environ[SHARED_DATA_ENV]
    return SHARED_DATA_UNSET if INSTALLED else str(PROJECT_ROOT.parent / "shared" / "data")


def app_groups(config_name: str) -> str:
    """``--help``'s group list: the groups ``conf/<config_name>.yaml`` composes (not every group of conf/), each with
    its options."""
    packages: dict[str, list[str]] = {}  # group → where it is placed (decoder@lm_decoder: lm_decoder)
    for entry in OmegaConf.load(CONFIG_DIR / f"{config_name}.yaml").get("defaults", []):
        if isinstance(entry, DictConfig):
            group, _, package = next(iter(entry)).partition("@")
            if group != "hydra" and (CONFIG_DIR / group).is_dir():
                packages.setdefault(group, []).append(package or group)
    lines = []
    for group, placed in packages.items():
        options = ", ".join(sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml")))
        lines.append(f"{group}: {options}" + ("" if placed == [group] else f"  (at {', '.join(placed)})"))
    return "\n".join(lines)


def register_resolvers() -> None:
    """``${crnn_lit_root:}`` = ``root_dir()``, ``${crnn_lit_assets:}`` = the shipped runtime assets and
    ``${crnn_lit_shared:}`` = ``shared_data_dir()``, so paths in conf/ work from any working directory;
    ``${metric_tag:val/cer}`` = ``cer``, a metric's name fit for a file name; ``${slurm_count:value,key}``: see
    :func:`slurm_count`; ``${crnn_lit_groups:predict}`` = ``app_groups("predict")``; ``${crnn_lit_below:…}``: see
    :func:`below`."""
    if not OmegaConf.has_resolver("crnn_lit_root"):
        OmegaConf.register_new_resolver("crnn_lit_root", lambda: str(root_dir()))
    if not OmegaConf.has_resolver("crnn_lit_assets"):
        OmegaConf.register_new_resolver("crnn_lit_assets", lambda: str(ASSETS_DIR))
    if not OmegaConf.has_resolver("crnn_lit_shared"):
        OmegaConf.register_new_resolver("crnn_lit_shared", shared_data_dir)
    if not OmegaConf.has_resolver("crnn_lit_groups"):
        OmegaConf.register_new_resolver("crnn_lit_groups", app_groups)
    if not OmegaConf.has_resolver("metric_tag"):
        OmegaConf.register_new_resolver("metric_tag", lambda name: str(name).rsplit("/", 1)[-1])
    if not OmegaConf.has_resolver("slurm_count"):
        OmegaConf.register_new_resolver("slurm_count", slurm_count)
    if not OmegaConf.has_resolver("crnn_lit_below"):
        OmegaConf.register_new_resolver("crnn_lit_below", below)


def slurm_count(value, key: str) -> int:
    """``${slurm_count:${trainer.devices},trainer.devices}``: a count the SLURM launcher needs as a positive number.
    A job asks for its nodes, tasks and GPUs per node when it is submitted; -1 ("all visible GPUs") means nothing
    there, and a guessed default would wait in the queue for nodes that do not exist."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hydra/launcher=slurm needs {key} as a positive number (SLURM reserves nodes, tasks and "
                          f"GPUs per node at submission), got {value!r}: give it, e.g. {key}=8")
    return value


def below(root: str | None, folder: str, key: str) -> str:
    """``${crnn_lit_below:${data.root},training,data.train.root}`` = ``<data.root>/training``: a default path that
    ``key`` can replace, so ``data.root`` is needed only when ``key`` is not given."""
    if root is None:
        raise ConfigError(f"{key} is not set: give {key}=<path>, or data.root=<path> (then {key} = "
                          f"<data.root>/{folder})")
    return f"{root}/{folder}"


class ConfigError(ValueError):
    """A configuration that cannot run, with what to set instead."""


class MissingFile(ConfigError, FileNotFoundError):
    """A file the configuration names is not there (a ``ConfigError``: one line from the entry points)."""


def find_asset(path: str | Path, folder: str, what: str, suffixes: tuple[str, ...] = ()) -> Path:
    """``path`` when it is a file; else the shipped asset it names — a bare name (``english_char6``, suffixes
    optional) or the checkout's spelling (``data/lm/english_char6.json.gz``) — from any working folder, installed
    or not; else ``MissingFile`` naming what was looked for and what is shipped."""
    path = Path(path)
    if path.is_file():
        return path
    shipped = ASSETS_DIR / folder
    parts = path.parts
    if not path.is_absolute() and (len(parts) == 1 or parts[:2] == ("data", folder)):
        for name in (path.name, *(path.name + s for s in suffixes)):
            if (shipped / name).is_file():
                return shipped / name
    names = sorted(p.name for p in shipped.glob("*") if p.is_file() and p.suffix not in (".md", ".py", "")) \
        if shipped.is_dir() else []
    raise MissingFile(f"{what} not found: {path} (not a file, nor a shipped one; shipped in {shipped}: "
                      f"{', '.join(names) or 'none'})")


@dataclass(frozen=True)
class Knob:
    """The type and range a config value must have: ``kind`` int or float (an int is a valid float), bounds
    inclusive unless ``above`` (exclusive lower bound), ``None`` allowed when ``optional``, and ``words`` the
    non-numeric values it also takes (``auto``)."""

    kind: type
    low: float | None = None
    high: float | None = None
    above: bool = False
    optional: bool = False
    words: tuple[str, ...] = ()

    def problem(self, value) -> str | None:
        """Why ``value`` does not fit, or None."""
        if value is None:
            return None if self.optional else "must be set"
        if value in self.words:
            return None
        kinds = (int, float) if self.kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"expected {self}"
        too_low = self.low is not None and (value <= self.low if self.above else value < self.low)
        if too_low or (self.high is not None and value > self.high):
            return f"out of range, expected {self}"
        return None

    def __str__(self) -> str:
        bounds = [f"{'>' if self.above else '>='} {self.low:g}"] if self.low is not None else []
        bounds += [f"<= {self.high:g}"] if self.high is not None else []
        text = " ".join(["an integer" if self.kind is int else "a number", " and ".join(bounds)]).strip()
        others = [*self.words, *(["null"] if self.optional else [])]
        return text + (f" (or {' or '.join(others)})" if others else "")


COUNT, SIZE = Knob(int, 0), Knob(int, 1)  # a count that may be 0; a size (batch, width, …) of at least 1
# Every common knob of the entry points' configs (keys a config does not have are not checked): a typo such as
# data.batch_size=abc fails in one line before anything is built, instead of deep inside a constructor.
KNOBS: dict[str, Knob] = {
    "seed": Knob(int),
    "batch_size": SIZE, "chunk_size": SIZE, "threads": Knob(int, 1, optional=True), "error_sheet": COUNT,
    "turn_tall": Knob(float, 1, optional=True), "opset": Knob(int, 7),
    "data.batch_size": SIZE, "data.eval_batch_size": SIZE, "data.num_workers": Knob(int, 0, words=("auto",)),
    "data.samples_per_epoch": Knob(int, 1, optional=True), "data.pool_batches": SIZE,
    "data.mix.holdout": Knob(float, 0, 1, above=True),
    "optimizer.lr": Knob(float, 0, above=True), "optimizer.weight_decay": Knob(float, 0),
    "scheduler.pct_start": Knob(float, 0, 1),
    "preprocess.height": SIZE, "preprocess.min_width": SIZE, "preprocess.max_width": SIZE,
    "preprocess.fixed_width": SIZE, "preprocess.width_multiple": SIZE,
    "rnn.hidden_size": SIZE, "rnn.num_layers": SIZE, "rnn.dropout": Knob(float, 0, 1),
    "trainer.max_epochs": Knob(int, -1, optional=True), "trainer.max_steps": Knob(int, -1, optional=True),
    "trainer.accumulate_grad_batches": SIZE, "trainer.log_every_n_steps": SIZE,
    "trainer.gradient_clip_val": Knob(float, 0, optional=True),
    "trainer.check_val_every_n_epoch": Knob(int, 1, optional=True), "trainer.num_sanity_val_steps": Knob(int, -1),
    "decoder.beam_width": SIZE, "decoder.prune_top_k": Knob(int, 1, optional=True),
    "decoder.prune_mass": Knob(float, 0, 1, above=True), "decoder.lm_weight": Knob(float, 0),
    "decoder.length_bonus": Knob(float), "decoder.delta": COUNT, "decoder.open_ratio": Knob(float, 0, optional=True),
    "lexicon_decoder.open_ratio": Knob(float, 0, optional=True),
}
ORDERED = [("preprocess.min_width", "preprocess.max_width")]  # (a, b): a <= b


def check_values(cfg: DictConfig) -> None:
    """Fail early, in one line, on the first common knob (``KNOBS``) of the wrong type or out of its range."""
    absent = object()
    for key, knob in KNOBS.items():
        value = OmegaConf.select(cfg, key, default=absent, throw_on_missing=False)
        if value is absent:  # not a key of this config (required ones are checked before: check_required)
            continue
        problem = knob.problem(value)
        if problem:
            raise ConfigError(f"{key}={value!r}: {problem}")
    for a, b in ORDERED:
        low, high = OmegaConf.select(cfg, a), OmegaConf.select(cfg, b)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            raise ConfigError(f"{a}={low} is above {b}={high}: the minimum cannot exceed the maximum")


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
    """Fail early, naming every required value (``???``) that is still unset, e.g. ``data.root``, and the first
    common knob of the wrong type or range (``check_values``)."""
    missing = sorted(_missing_keys(cfg))
    if missing:
        examples = " ".join(f"{k}=..." for k in missing)
        raise ConfigError(f"required config value(s) not set: {', '.join(missing)}. "
                         f"Give them on the command line, e.g. `python -m crnn_lit.train ... {examples}`")
    check_values(cfg)


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
