"""Experiment tracking with Weights & Biases: a logger that never blocks, one run per job, resumable run ids.

* ``wandb_logger`` (the ``logger=wandb`` target) resolves the mode up front — ``auto`` is online only when an API
  key is configured, else offline — so wandb never prompts. If an online run cannot start (no key, server
  unreachable within ``init_timeout`` seconds) the run falls back to offline and training goes on.
* The run id is kept in ``<run dir>/wandb_run_id.txt``: a resumed job (``resume=auto``) continues the same run.
* In a multirun, every job is its own W&B run (``finish_wandb`` after each job), grouped by the sweep directory.
* The best checkpoint is uploaded as a ``model`` artifact when ``log_model`` is set (``log_best_checkpoint``).
* ``AppendingCSVLogger`` keeps ``metrics.csv`` of a resumed run (Lightning's CSVLogger deletes it).
* ``cpu_seconds`` is the CPU time ``crnn_lit.training.callbacks.LearningCurve`` reports (the compute budget, not the epoch
  count, is what CPU users compare).
"""

from __future__ import annotations

import logging
import netrc
import os
import secrets
import string
import sys
from pathlib import Path

from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment
from lightning.pytorch.utilities import rank_zero_only

from crnn_lit.atomic import atomic_write

log = logging.getLogger(__name__)


def finish_wandb() -> None:
    """Close the active W&B run, if any, so the next job of a multirun starts its own run (crnn_lit.task calls it
    after every command)."""
    wandb = sys.modules.get("wandb")  # only if this process imported it: never import wandb just to close it
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()

RUN_ID_FILE = "wandb_run_id.txt"
MODES = ("online", "offline", "disabled")


def wandb_has_key() -> bool:
    """True when an API key is configured (environment or the netrc entry `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def resolve_mode(mode: str) -> str:
    """``auto`` → ``WANDB_MODE`` if set, else online with a key and offline without; online without a key →
    offline (never a login prompt)."""
    if mode == "auto":
        mode = os.environ.get("WANDB_MODE") or ("online" if wandb_has_key() else "offline")
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    if mode not in MODES:
        raise ValueError(f"logger.wandb.mode must be auto, online, offline or disabled, got {mode!r}")
    if mode == "online" and not wandb_has_key():
        log.warning("W&B: no API key configured (WANDB_API_KEY or `wandb login`); logging offline instead")
        mode = "offline"
    return mode


def persistent_run_id(path: Path) -> str:
    """The run id stored at ``path``, or a new one written there (global rank 0 only)."""
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    alphabet = string.ascii_lowercase + string.digits
    run_id = "".join(secrets.choice(alphabet) for _ in range(8))
    if rank_zero_only.rank == 0:
        with atomic_write(path, "w") as f:
            f.write(run_id + "\n")
    return run_id


def _hydra_job():
    """The running Hydra job's config (``hydra.*``), or None outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def sweep_group_and_name() -> tuple[str | None, str | None]:
    """In a multirun: group = the sweep directory's name, name = ``<group>/<job number>``; else (None, None)."""
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    job = _hydra_job()
    if job is None or OmegaConf.select(job, "mode", default=None) != RunMode.MULTIRUN:
        return None, None
    group = Path(str(job.sweep.dir)).name
    num = OmegaConf.select(job, "job.num", default=None, throw_on_missing=False)
    return group, f"{group}/{num}" if num is not None else group


class CRNNWandbLogger(WandbLogger):
    """Lightning's ``WandbLogger`` + a persistent run id, an offline fallback, and crnn_lit's table settings.

    The run is created lazily on global rank 0 only (other ranks get Lightning's dummy experiment), after the
    strategy has set the ranks, so neither DDP children nor other nodes open runs or write the id file.
    """

    def __init__(self, *, mode: str, save_dir: str, run_id_file: str | None, val_samples: int,
                 upload_best: bool, init_timeout: float, **kwargs):
        import wandb

        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout))
        super().__init__(save_dir=save_dir, mode=mode, log_model=False, **kwargs)
        self.run_id_file = Path(run_id_file) if run_id_file else None
        self.val_samples = val_samples
        self.upload_best = upload_best

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            if self.run_id_file is not None and not self._wandb_init.get("id"):
                self._wandb_init["id"] = self._id = persistent_run_id(self.run_id_file)
            try:
                return WandbLogger.experiment.fget(self)
            except Exception as err:
                if self._wandb_init.get("mode") != "online":
                    raise
                log.warning("W&B: could not start an online run (%s: %s); logging offline instead "
                            "(`wandb sync %s/wandb` later)", type(err).__name__, err, self.save_dir)
                import wandb

                finish_wandb()
                wandb.teardown()  # the failed attempt still holds the run id in wandb's service process
                self._wandb_init["mode"] = "offline"
        return WandbLogger.experiment.fget(self)


def wandb_logger(mode: str = "auto", save_dir: str = ".", group: str | None = None, name: str | None = None,
                 run_id_file: str | None = RUN_ID_FILE, log_model: bool = False, val_samples: int = 16,
                 init_timeout: float = 20.0, **kwargs) -> CRNNWandbLogger:
    """The ``logger=wandb`` target. ``mode``: auto | online | offline | disabled (``WANDB_MODE`` wins over auto).

    ``group``/``name`` None: in a multirun, the sweep directory's name / ``<sweep>/<job number>``.
    ``run_id_file``: relative to ``save_dir``; keeps the run id so a resumed job continues the run (None = new
    run every time). ``log_model``: upload the best checkpoint as a ``model`` artifact after training.
    ``val_samples``: rows of the validation sample table logged per validation epoch (0 = none).
    Offline runs are written under ``save_dir/wandb`` (sync later with ``wandb sync``).
    """
    mode = resolve_mode(mode)
    os.environ.setdefault("WANDB_SILENT", "true")
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    sweep_group, sweep_name = sweep_group_and_name()
    id_file = None if mode == "disabled" or not run_id_file else Path(save_dir) / run_id_file
    return CRNNWandbLogger(mode=mode, save_dir=save_dir, run_id_file=id_file, val_samples=int(val_samples),
                           upload_best=bool(log_model), init_timeout=float(init_timeout),
                           group=group or sweep_group, name=name or sweep_name, **kwargs)


def wandb_loggers(loggers) -> list[CRNNWandbLogger]:
    return [lg for lg in loggers or () if isinstance(lg, CRNNWandbLogger)]


def log_best_checkpoint(loggers, path: str, metrics: dict[str, float]) -> None:
    """Upload ``path`` as a ``model`` artifact (aliases best + latest) to every W&B run with ``log_model``."""
    if not path or rank_zero_only.rank != 0:
        return
    for lg in wandb_loggers(loggers):
        if not lg.upload_best or lg._wandb_init.get("mode") == "disabled":
            continue
        import wandb

        run = lg.experiment
        artifact = wandb.Artifact(f"model-{run.id}", type="model",
                                  metadata={k: float(v) for k, v in metrics.items()})
        artifact.add_file(str(path), name=Path(path).name)
        run.log_artifact(artifact, aliases=["best", "latest"])


class _AppendingWriter(ExperimentWriter):
    """Continues an existing ``metrics.csv``: keeps its rows and columns instead of deleting the file."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            import csv

            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = sorted(next(csv.reader(file), []))

    def forget_from(self, step: int) -> None:
        """Drop the rows of ``step`` and later: a run resumed from a checkpoint at global step ``step`` logs them
        again (rows are flushed more often than checkpoints are written)."""
        if not self._fs.isfile(self.metrics_file_path):
            return
        import csv

        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            reader = csv.DictReader(file)
            rows = list(reader)
        kept = [row for row in rows if not row.get("step") or int(float(row["step"])) < step]
        if len(kept) < len(rows):
            with self._fs.open(self.metrics_file_path, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=reader.fieldnames)
                writer.writeheader()
                writer.writerows(kept)
            log.info("resume from global step %d: %d later rows of %s dropped (they are logged again)", step,
                     len(rows) - len(kept), self.metrics_file_path)


class AppendingCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` that appends to the ``metrics.csv`` of a resumed run (``logger=csv``), without
    the rows logged after the checkpoint it resumes from (``forget_from``)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def forget_from(self, step: int) -> None:
        """See ``_AppendingWriter.forget_from``; the trainer calls it when training starts (``EpochStats``)."""
        self.save()  # rows still buffered belong to this process, before the step
        self.experiment.forget_from(step)


def cpu_seconds() -> float:
    """CPU time (user + system) of this process, its reaped children and its live children (the DataLoader
    workers), in seconds. Live children are read from /proc; elsewhere only reaped ones are counted."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    proc, me, tick = Path("/proc"), str(os.getpid()), os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    if not proc.is_dir():
        return total
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if fields[1] == me:  # ppid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
