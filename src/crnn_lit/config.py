"""Hydra/OmegaConf plumbing shared by the entry points."""

from __future__ import annotations

import re
from dataclasses import asdict

from omegaconf import DictConfig, ListConfig, OmegaConf

from crnn_lit.knobs import COUNT, SIZE, Knob

# where files are: crnn_lit.paths (no Hydra); named here too for the entry points, tests and bench/
from crnn_lit.paths import (  # noqa: F401
    ASSETS_DIR,
    CONFIG_DIR,
    INSTALLED,
    PROJECT_ROOT,
    SHARED_DATA_ENV,
    SHARED_DATA_UNSET,
    ConfigError,
    MissingFile,
    find_asset,
    resolve_ckpt,
    root_dir,
    shared_data_dir,
)


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


def _reading_defaults() -> dict:
    """``Recognizer.from_pretrained``'s defaults: ``pretrained`` (the shipped model it reads with) and READING."""
    import inspect

    from crnn_lit.reading.recognizer import Recognizer

    params = inspect.signature(Recognizer.from_pretrained).parameters
    return {"pretrained": params["name"].default, **{k: params[k].default for k in READING}}


def register_resolvers() -> None:
    """``${crnn_lit_root:}`` = ``root_dir()``, ``${crnn_lit_assets:}`` = the shipped runtime assets and
    ``${crnn_lit_shared:}`` = ``shared_data_dir()``, so paths in conf/ work from any working directory;
    ``${metric_tag:val/cer}`` = ``cer``, a metric's name fit for a file name; ``${slurm_count:value,key}``: see
    ``slurm_count``; ``${crnn_lit_groups:predict}`` = ``app_groups("predict")``; ``${crnn_lit_below:…}``: see
    ``below``; ``${crnn_lit_required:…}``: see ``required``; ``${crnn_lit_default_model:}`` = the shipped
    model ``Recognizer.from_pretrained`` reads with (export's default)."""
    if not OmegaConf.has_resolver("crnn_lit_default_model"):  # the model Recognizer.from_pretrained reads with
        OmegaConf.register_new_resolver("crnn_lit_default_model", lambda: _reading_defaults()["pretrained"])
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
    if not OmegaConf.has_resolver("crnn_lit_required"):
        OmegaConf.register_new_resolver("crnn_lit_required", required)
    register_python_configs()


READING = ("batch_size", "chunk_size", "turn_tall", "window", "threads", "device")  # Recognizer's reading settings


def register_python_configs() -> None:
    """The settings Python owns, as config nodes conf/ composes (``- /crnn_lit/<group>/<name>@_here_`` in a
    defaults list): the named decoders (``crnn_lit.transcription.presets``), the named backbones, rnns and
    transformation stages (``crnn_lit.model.build``), the input spec (``Preprocess``) and ``Recognizer``'s reading
    defaults (model, batch size, chunk size, turn_tall, …). Each value has one copy, in Python; a YAML option names
    the Python object and adds only its wiring."""

    from hydra.core.config_store import ConfigStore

    from crnn_lit.model.build import BACKBONES, RNNS, TRANSFORMS
    from crnn_lit.preprocess import INPUT_SPECS, Preprocess
    from crnn_lit.transcription.presets import DECODERS, decoder_settings

    store = ConfigStore.instance()
    for name, (cls, _) in DECODERS.items():
        node = {"_target_": f"crnn_lit.transcription.{cls.__name__}", "_partial_": True,
                **decoder_settings(name)}
        store.store(group="crnn_lit/decoder", name=name, node=node)
    for group, records in (("backbone", BACKBONES), ("rnn", RNNS), ("transform", TRANSFORMS)):
        for name, record in records.items():
            store.store(group=f"crnn_lit/{group}", name=name, node=record)
    for name in INPUT_SPECS:
        store.store(group="crnn_lit/preprocess", name=name,
                    node={"_target_": "crnn_lit.preprocess.Preprocess", **asdict(Preprocess.from_conf(name))})
    store.store(group="crnn_lit", name="reading", node=_reading_defaults())
    register_slurm_schema(store)


def register_slurm_schema(store) -> None:
    """``hydra/launcher/crnn_lit_slurm``: the submitit launcher's schema plus ``srun_args`` (extra arguments of the
    ``srun`` line of the sbatch script). The launcher hands every key to submitit, which has ``srun_args``, but its
    schema (hydra-submitit-launcher 1.2) lacks the key, and the srun line must get ``--cpus-per-task``: since
    Slurm 22.05 srun no longer inherits it from sbatch, and a task bound to one CPU gets no loader workers.
    Only when the launcher plugin is installed (the ``slurm`` extra)."""
    from dataclasses import field, make_dataclass

    try:
        from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
    except ImportError:
        return
    schema = make_dataclass("CrnnLitSlurmQueueConf", [("srun_args", list[str], field(default_factory=list))],
                            bases=(SlurmQueueConf,))
    store.store(group="hydra/launcher", name="crnn_lit_slurm", node=schema, provider="crnn_lit")



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


def required(key: str, what: str) -> None:
    """``init_from: ${crnn_lit_required:init_from,the imported model}``: a value a config group needs that the root
    config already sets (to null), where ``???`` cannot be used — merging ``???`` onto a value keeps the value."""
    raise ConfigError(f"{key} is not set: give {key}=<{what}>")


# The values no object of crnn_lit takes — the commands' own, torch's optimizers and schedulers, Lightning's Trainer
# —, by config key. Every other numeric value is declared by the object that takes it (its KNOBS: crnn_lit.knobs).
OTHER_KNOBS: dict[str, Knob] = {
    "seed": Knob(int), "lr_reference_batch": SIZE, "error_sheet": COUNT, "opset": Knob(int, 7),
    "optimizer.lr": Knob(float, 0, above=True), "optimizer.weight_decay": Knob(float, 0),
    "scheduler.pct_start": Knob(float, 0, 1),
    "trainer.max_epochs": Knob(int, -1, optional=True), "trainer.max_steps": Knob(int, -1, optional=True),
    "trainer.accumulate_grad_batches": SIZE, "trainer.log_every_n_steps": SIZE,
    "trainer.gradient_clip_val": Knob(float, 0, optional=True),
    "trainer.check_val_every_n_epoch": Knob(int, 1, optional=True), "trainer.num_sanity_val_steps": Knob(int, -1),
}
_ONE_KEY = re.compile(r"^\$\{([\w.]+)\}$")  # ${data.mix.holdout}: a value set elsewhere, named where it is set


def _declared_knobs(target) -> dict[str, Knob]:
    """The ``KNOBS`` a node's ``_target_`` declares (crnn_lit's own objects; none for any other or a target that
    does not import — building it then fails with Hydra's message)."""
    if not isinstance(target, str) or not target.startswith("crnn_lit."):
        return {}
    from hydra.utils import get_object

    try:
        return getattr(get_object(target), "KNOBS", {})
    except Exception:  # noqa: BLE001 — not ours to judge here
        return {}


def _knobbed_values(cfg: DictConfig):
    """``(key, value, knob)`` of every value of ``cfg`` that has a knob: by ``OTHER_KNOBS``, the root's reading
    settings by ``Recognizer.KNOBS``, and every node with a ``_target_`` by the ``KNOBS`` its target declares. A
    value interpolated from one key (``fraction: ${data.mix.holdout}``) is named by that key, the one a user sets."""
    from crnn_lit.reading.recognizer import Recognizer

    absent = object()
    nodes = [("", cfg, {k: v for k, v in Recognizer.KNOBS.items() if k in READING})]
    todo = [("", cfg)]
    while todo:
        path, node = todo.pop()
        keys = range(len(node)) if isinstance(node, ListConfig) else [k for k in node if path or k != "hydra"]
        for key in keys:
            if not OmegaConf.is_interpolation(node, key) and isinstance(node._get_node(key), (DictConfig, ListConfig)):
                todo.append((f"{path}{key}.", node._get_node(key)))
        if isinstance(node, DictConfig) and "_target_" in node:
            nodes.append((path, node, _declared_knobs(node.get("_target_"))))
    for path, node, knobs in nodes:
        for key, knob in knobs.items():
            if key in node:
                raw = node._get_node(key)._value() if OmegaConf.is_interpolation(node, key) else None
                named = _ONE_KEY.match(raw) if isinstance(raw, str) else None
                yield named.group(1) if named else f"{path}{key}", node[key], knob
    for key, knob in OTHER_KNOBS.items():
        value = OmegaConf.select(cfg, key, default=absent, throw_on_missing=False)
        if value is not absent:  # not a key of this config (required ones are checked before: check_required)
            yield key, value, knob


def check_values(cfg: DictConfig) -> None:
    """Fail early, in one line, on the first numeric value of the wrong type or out of its range (a knob of the
    object that takes it, or ``OTHER_KNOBS``): before anything is built, as the objects would when built."""
    for key, value, knob in _knobbed_values(cfg):
        problem = knob.problem(value)
        if problem:
            raise ConfigError(f"{key}={value!r}: {problem}")


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
    """The config an entry point would see for ``overrides``, composed outside a Hydra app (tests, bench/, the
    hold-out reader). A caller's own Hydra state (its ``GlobalHydra``) is put back afterwards."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    register_resolvers()
    backup = get_gh_backup()  # initialize_config_dir restores only what it found, and it must find none
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    finally:
        restore_gh_from_backup(backup)


def model_config(cfg: DictConfig) -> dict:
    """The record of the network a composed train config defines — what every checkpoint stores: the
    ``transform``, ``backbone`` and ``rnn`` nodes resolved, and the input spec."""
    from hydra.utils import instantiate

    return {
        "transform": OmegaConf.to_container(cfg.transform, resolve=True),
        "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
        "rnn": OmegaConf.to_container(cfg.rnn, resolve=True),
        # the input spec, so inference and export resize images exactly as training did
        **instantiate(cfg.preprocess).record(),
    }


# keys of a conf/data node that hold values for its sources to interpolate (`${data.root}/iiit5k`,
# `${data.mix.ratios}`), not arguments of the data module: set on the command line, never passed to Python
DATA_VARIABLES = ("root", "labels_file", "mix")


def data_module(data: DictConfig, **kwargs):
    """The data module a composed ``data`` node describes (``TextDataModule`` for every shipped one), with its
    sources built from the variables ``DATA_VARIABLES`` and those variables left out; ``kwargs`` are what the
    config cannot know (the model's charset and output length)."""
    from hydra.utils import instantiate

    # each kept child is resolved where it sits (its interpolations reach data.root, paths.*, …), then detached
    node = {key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            for key in data if key not in DATA_VARIABLES for value in [data[key]]}
    return instantiate(node, **kwargs)
