"""Train a CRNN: ``python -m crnn_lit.train [group=option ...] [key=value ...]`` (Hydra app, conf/train.yaml).

Builds the charset, model, data and LightningModule from config and fits them; resume, atomic checkpoints and
DDP-under-Hydra live in ``crnn_lit.training.runtime``. Every run ends with ``<run dir>/result.json`` (the monitored metric
at the best checkpoint, and that checkpoint); a multirun's ``summary.csv`` collects them (``crnn_lit.training.sweep``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from crnn_lit.checkpoint import init_from
from crnn_lit.config import ConfigError, check_required, data_module, model_config
from crnn_lit.model import build_model
from crnn_lit.task import task
from crnn_lit.training.callbacks import LastCheckpoint, LearningCurve, LogConfig
from crnn_lit.training.runtime import (
    AtomicCheckpointIO,
    ExitOnSigterm,
    resolve_checkpoint,
    route_ddp_children_to_this_job,
    scaled_lr,
    slurm_plugins,
)
from crnn_lit.training.sweep import RESULT_FILE
from crnn_lit.training.system import CRNNSystem
from crnn_lit.training.tracking import log_best_checkpoint

log = logging.getLogger("crnn_lit.train")

# metrics that get better as they go down: optimized_mode must be `min` for them
MINIMIZED = ("val/cer", "val/loss", "train/loss", "data/padding_waste")


def _instantiate_dict(nodes: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a named group (loggers, callbacks); None/empty → []."""
    return [instantiate(node) for node in (nodes or {}).values() if node and "_target_" in node]


# --- training ------------------------------------------------------------------------------------------------
def _check_optimized_metric(cfg: DictConfig) -> None:
    metric, mode = cfg.get("optimized_metric"), cfg.get("optimized_mode", "max")
    if mode not in ("max", "min"):
        raise ConfigError(f"optimized_mode must be max or min, got {mode!r}")
    if metric in MINIMIZED and mode == "max":
        raise ConfigError(f"optimized_metric={metric} gets better as it goes down: also set optimized_mode=min "
                          "(and direction=minimize for an Optuna sweep)")


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, validate the best checkpoint, and return the final metrics (incl. ``cfg.optimized_metric``)."""
    check_required(cfg)
    _check_optimized_metric(cfg)
    ckpt_path = resolve_checkpoint(cfg)
    charset = instantiate(cfg.charset)
    spec = model_config(cfg)  # builds the input spec, which checks its widths (no random draw: before the seed)
    L.seed_everything(cfg.seed, workers=True)
    model = build_model(spec["backbone"], spec["rnn"], charset.num_classes, spec["channels"], spec["transform"])
    if cfg.get("init_from") and cfg.get("ckpt_path"):
        raise ConfigError("init_from starts a new run from weights; ckpt_path continues one — give one of them")
    # resume=auto continues from the run's checkpoint, which holds what init_from started the run from: the original
    # command line (init_from= included) plus resume=auto works
    fine_tune = cfg.get("init_from") and not ckpt_path
    if cfg.get("init_from") and ckpt_path:
        log.info("resuming from %s: init_from=%s is not applied again (the checkpoint continues from it)",
                 ckpt_path, cfg.init_from)
    if fine_tune:
        initialized = init_from(model, charset, cfg.init_from, log)
    datamodule = data_module(cfg.data, charset=charset, output_length=model.output_length)
    loggers = _instantiate_dict(cfg.get("logger"))
    # last.ckpt after the best-checkpoint bookkeeping, whatever order the config merged them in (LastCheckpoint)
    callbacks = sorted(_instantiate_dict(cfg.get("callbacks")), key=lambda cb: isinstance(cb, LastCheckpoint))
    if fine_tune:  # a chained stage: its learning curve counts on from the source's totals
        for cb in callbacks:
            if isinstance(cb, LearningCurve):
                cb.continue_from(initialized.training)
    route_ddp_children_to_this_job()
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks,
                                     plugins=[AtomicCheckpointIO(), *slurm_plugins()])
    scale_lr(cfg, trainer)  # the world size is known once the trainer is
    if loggers:
        trainer.callbacks.append(LogConfig(OmegaConf.to_container(cfg, resolve=True)))
    system = CRNNSystem(model, charset, optimizer=instantiate(cfg.optimizer),
                        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
                        model_config=spec, channels_last=cfg.channels_last, case_fold=cfg.case_fold)

    try:
        trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
    except MisconfigurationException as err:
        if "could not find the monitored key" in str(err):
            raise ConfigError(f"optimized_metric={cfg.optimized_metric!r} is not logged by CRNNSystem "
                              f"(val/acc, val/cer, val/ned, val/loss, train/loss, ...): {err}") from err
        raise
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = next((cb.best_model_path for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), "")
    if best:  # report the checkpoint we keep, not whatever the last epoch happened to be
        with ExitOnSigterm():
            for result in trainer.validate(system, datamodule=datamodule, ckpt_path=best, verbose=False):
                metrics.update({k: float(v) for k, v in result.items()})
        log_best_checkpoint(loggers, best, metrics)
    if cfg.optimized_metric and cfg.optimized_metric not in metrics and not cfg.trainer.get("fast_dev_run"):
        raise ConfigError(f"optimized_metric={cfg.optimized_metric!r} was never logged; logged: {sorted(metrics)}")
    if trainer.is_global_zero:
        write_result(cfg, metrics, best)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(("val/", "train/")))
        print(f"\nfinal metrics: {shown}")
        print(f"global step: {trainer.global_step}")
        print(f"best checkpoint: {best or '(none saved)'}")
        print(f"run directory: {cfg.paths.output_dir}")
    return metrics


def scale_lr(cfg: DictConfig, trainer: L.Trainer) -> None:
    """``optimizer.lr`` (and one-cycle's ``max_lr``, which interpolates it) for the global batch of one optimizer
    step, by ``lr_scaling`` from ``lr_reference_batch``; printed at start (rank 0) whatever the rule."""
    base = cfg.optimizer.get("lr")
    if base is None:
        return
    global_batch = cfg.data.batch_size * trainer.world_size * trainer.accumulate_grad_batches
    rule, reference = cfg.get("lr_scaling"), cfg.get("lr_reference_batch", 64)
    lr = scaled_lr(float(base), global_batch, rule, reference)
    with open_dict(cfg):
        cfg.optimizer.lr = lr
    if rank_zero_only.rank == 0:
        how = (f"{base:g} × {'√' if rule == 'sqrt' else ''}({global_batch} / {reference})" if rule
               else f"{base:g} (lr_scaling=null)")
        print(f"global batch {global_batch} = {cfg.data.batch_size} per device × {trainer.world_size} processes × "
              f"{trainer.accumulate_grad_batches} accumulated; learning rate {lr:.4g} = {how}")


def write_result(cfg: DictConfig, metrics: dict[str, float], best: str) -> None:
    """``<run dir>/result.json``: the monitored metric, its value at the best checkpoint, that checkpoint and the
    final metrics — what a sweep's summary.csv reads (crnn_lit.training.sweep)."""
    result = {"optimized_metric": cfg.optimized_metric, "optimized_mode": cfg.optimized_mode,
              "best_value": metrics.get(cfg.optimized_metric), "best_checkpoint": best, "metrics": metrics}
    path = Path(cfg.paths.output_dir) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


@task("train")
def main(cfg: DictConfig) -> float | None:
    return train(cfg).get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
