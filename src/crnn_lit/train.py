"""Train a CRNN: ``python -m crnn_lit.train [group=option ...] [key=value ...]`` (Hydra app, conf/train.yaml)."""

from __future__ import annotations

import logging
import sys

import hydra
import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from crnn_lit.config import CONFIG_DIR, ConfigError, check_required, register_resolvers
from crnn_lit.model import build_model
from crnn_lit.model.build import model_config
from crnn_lit.system import CRNNSystem
from crnn_lit.tracking import finish_wandb

log = logging.getLogger("crnn_lit.train")


def _instantiate_dict(nodes: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a named group (loggers, callbacks); None/empty → []."""
    return [instantiate(node) for node in (nodes or {}).values() if node and "_target_" in node]


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit, validate the best checkpoint, and return the final metrics (incl. ``cfg.optimized_metric``)."""
    check_required(cfg)
    L.seed_everything(cfg.seed, workers=True)
    charset = instantiate(cfg.charset)
    spec = model_config(cfg)
    model = build_model(spec["backbone"], spec["rnn"], charset.num_classes, spec["channels"])
    datamodule = instantiate(cfg.data, charset=charset, output_length=model.backbone.output_length)
    system = CRNNSystem(model, charset, optimizer=instantiate(cfg.optimizer),
                        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
                        decoder=instantiate(cfg.decoder), model_config=spec)
    loggers = _instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=_instantiate_dict(cfg.get("callbacks")))
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    trainer.fit(system, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if best:  # report the checkpoint we keep, not whatever the last epoch happened to be
        for result in trainer.validate(system, datamodule=datamodule, ckpt_path=best, verbose=False):
            metrics.update({k: float(v) for k, v in result.items()})
    if cfg.optimized_metric and cfg.optimized_metric not in metrics and not cfg.trainer.get("fast_dev_run"):
        raise ConfigError(f"optimized_metric={cfg.optimized_metric!r} was never logged; logged: {sorted(metrics)}")
    if trainer.is_global_zero:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(("val/", "train/")))
        print(f"\nfinal metrics: {shown}")
        print(f"best checkpoint: {best or '(none saved)'}")
        print(f"run directory: {cfg.paths.output_dir}")
    return metrics


register_resolvers()


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except ConfigError as err:
        log.error("%s", err)
        sys.exit(2)
    finally:
        finish_wandb()  # one W&B run per job, also when the job fails
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
