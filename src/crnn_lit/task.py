"""The frame the entry points share (``train``, ``evaluate``, ``predict``, ``export``).

    @task("predict")  # conf/predict.yaml
    def main(cfg: DictConfig) -> None:
        predict(cfg)

makes ``main`` a Hydra app of that config. A configuration that cannot run (``ConfigError``, or a checkpoint
that cannot be used) ends the job with one line on stderr and exit status 2, not a traceback; the W&B run is
closed after every job, also a failed one (in a multirun every job is its own run). It loads torch (through
``crnn_lit.checkpoint``, for ``CheckpointError``), as every command it frames does anyway; Lightning it does not.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import sys
import traceback
from collections.abc import Callable

import hydra
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from crnn_lit.checkpoint import CheckpointError
from crnn_lit.config import CONFIG_DIR, ConfigError, compose_config, register_resolvers

USER_ERRORS = (ConfigError, CheckpointError)


class LaunchErrors(Callback):
    """Hydra callback (conf/hydra/default.yaml): a ``ConfigError`` met while a multirun's launcher settings are
    resolved — e.g. ``hydra/launcher=slurm`` without ``trainer.devices`` — ends the command as one inside a job does
    (one line, exit status 2), before anything is submitted, instead of Hydra's traceback."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            OmegaConf.to_container(config.hydra.launcher, resolve=True)
        except Exception as err:  # OmegaConf wraps a resolver's error: look for a ConfigError in the chain
            cause = err
            while cause is not None and not isinstance(cause, ConfigError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            print(f"crnn_lit: error: {cause}", file=sys.stderr, flush=True)
            sys.exit(2)


def user_error(err: BaseException) -> BaseException | None:
    """``err`` if it is a user error, or the user error Hydra or OmegaConf wrapped: when a config node's target
    raised it (``InstantiationException`` chains the original) or a resolver did (``InterpolationResolutionError``
    holds it as its context, e.g. data=lmdb without any root); None for anything else (a bug: its traceback is
    shown)."""
    while err is not None and not isinstance(err, USER_ERRORS):
        err = err.__cause__ if isinstance(err, InstantiationException) else \
            err.__context__ if isinstance(err, InterpolationResolutionError) else None
    return err


def task(config_name: str) -> Callable[[Callable[[DictConfig], object]], Callable]:
    """Decorator: ``fn(cfg)`` → the Hydra app of ``conf/<config_name>.yaml`` (returns what ``fn`` returns, e.g.
    the metric an Optuna sweep optimizes)."""
    register_resolvers()

    def decorate(fn: Callable[[DictConfig], object]) -> Callable:
        @functools.wraps(fn)  # Hydra names the job (and its log file) after the wrapped function's module
        def run(cfg: DictConfig):
            try:
                return fn(cfg)
            except (*USER_ERRORS, InstantiationException, InterpolationResolutionError) as err:
                cause = user_error(err)
                if cause is None:
                    raise
                print(f"crnn_lit.{config_name}: error: {cause}", file=sys.stderr, flush=True)
                sys.exit(2)
            finally:
                if "wandb" in sys.modules:  # only a process that imported wandb can have a run to close
                    from crnn_lit.training.tracking import finish_wandb

                    finish_wandb()

        app = hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(run)

        @functools.wraps(app)
        def main(*args, **kwargs):
            # Hydra reports its own errors (an override's typo, an unknown group option) in 7-14 lines and exit 1;
            # with HYDRA_FULL_ERROR it raises them instead, so they are answered here in one line, exit 2
            full = os.environ.get("HYDRA_FULL_ERROR")
            os.environ["HYDRA_FULL_ERROR"] = "1"
            try:
                return app(*args, **kwargs)
            except (ConfigCompositionException, MissingConfigException, OverrideParseException) as err:
                print(f"crnn_lit.{config_name}: error: {override_error(err, config_name)}", file=sys.stderr,
                      flush=True)
                sys.exit(2)
            except Exception:  # a bug: its whole traceback, as Hydra with HYDRA_FULL_ERROR=1 shows it
                if full is not None:
                    raise
                traceback.print_exc()
                sys.exit(1)
            finally:
                if full is None:
                    os.environ.pop("HYDRA_FULL_ERROR", None)
                else:
                    os.environ["HYDRA_FULL_ERROR"] = full

        return main

    return decorate


def config_keys(node, prefix: str = "") -> list[str]:
    """Every key of a composed config, dotted (``decoder.beam_width``), without resolving interpolations."""
    keys = []
    for key in node:
        path = f"{prefix}{key}"
        keys.append(path)
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not OmegaConf.is_interpolation(node, key) and not child._is_missing():
            keys += config_keys(child, path + ".")
    return keys


def closest(word: str, choices: list[str]) -> list[str]:
    """Up to three of ``choices`` nearest ``word``: by the whole string, or by its last dotted part."""
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    last = word.rsplit(".", 1)[-1]
    by_part = [c for c in choices if difflib.SequenceMatcher(None, last, c.rsplit(".", 1)[-1]).ratio() >= 0.75]
    return list(dict.fromkeys(close + sorted(by_part, key=len)))[:3]


def override_error(err: Exception, config_name: str) -> str:
    """One line for an error Hydra met composing the command line: the override, and the closest valid keys or
    options."""
    message = str(err).strip()
    missing = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
    if isinstance(err, MissingConfigException) and missing:
        group, option = missing.groups()
        options = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        near = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
        return (f"{group}={option}: no such option in conf/{group}"
                + (f"; did you mean {' or '.join(near)}?" if near else "") + f" (options: {', '.join(options)})")
    key = re.search(r"Could not (?:override|append to|delete from config)[^']*'([^']+)'", message)
    if key:
        key = key.group(1)
        try:
            known = config_keys(compose_config([], config_name))
        except Exception:  # noqa: BLE001 — the hint is a courtesy: without it the line still says what is wrong
            known = []
        near = closest(key, known)
        hint = f"did you mean {' or '.join(near)}?" if near else "`--cfg job` lists every key"
        new = f" (a new key needs +{key}=…)" if "override" in message else ""
        return f"{key}: no such config key in {config_name}; {hint}{new}"
    first = message.splitlines()[0] if message else type(err).__name__
    return f"cannot read the command line: {first} (quote a value with special characters; see --help)"
