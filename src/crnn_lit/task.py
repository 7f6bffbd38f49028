"""The frame the entry points share (``train``, ``evaluate``, ``predict``, ``export``).

    @task("predict")  # conf/predict.yaml
    def main(cfg: DictConfig) -> None:
        predict(cfg)

makes ``main`` a Hydra app of that config. A configuration that cannot run (``ConfigError``, or a checkpoint
that cannot be used) ends the job with one line on stderr and exit status 2, not a traceback; the W&B run is
closed after every job, also a failed one (in a multirun every job is its own run). Kept free of Lightning and
torch imports, so ``predict`` starts fast.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import hydra
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from crnn_lit.checkpoint import CheckpointError
from crnn_lit.config import CONFIG_DIR, ConfigError, register_resolvers

USER_ERRORS = (ConfigError, CheckpointError)


def finish_wandb() -> None:
    """Close the active W&B run, if any, so the next job of a multirun starts its own run."""
    wandb = sys.modules.get("wandb")  # only if this process imported it: never import wandb just to close it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


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
                finish_wandb()

        return hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name=config_name)(run)

    return decorate
