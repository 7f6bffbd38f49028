"""What makes training runs survive scale and faults (used by ``crnn_lit.train``).

* **resume**: ``resume=auto`` continues from the newest ``last*.ckpt`` of the run directory (point at an old
  run with ``hydra.run.dir=<run dir>``), ``ckpt_path=<file>`` from any checkpoint. Lightning restores model,
  optimizer, scheduler, step and epoch; ``crnn_lit.data.loader.ResumableLoader`` adds the position inside the
  epoch, so a resumed run sees exactly the batches an uninterrupted one would.
* **atomic checkpoints**: ``AtomicCheckpointIO`` writes next to the target, fsyncs, then renames.
* **preemption**: DataLoader workers ignore the preemption signals (``crnn_lit.data.loader.shielded_worker``), so a signal to the whole
  process group reaches only the processes that handle it (``crnn_lit.training.callbacks.LastCheckpoint``); under SLURM
  submitit requeues, not Lightning (``slurm_plugins``).
* **DDP under Hydra**: Lightning starts ranks > 0 by re-running the command line; for a multirun that would
  start new sweeps. ``ddp_child_command`` gives the children this job's own overrides and directory instead.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from omegaconf import DictConfig

from crnn_lit.atomic import atomic_write
from crnn_lit.paths import ConfigError

log = logging.getLogger("crnn_lit.train")


# --- resume --------------------------------------------------------------------------------------------------
def _is_first_process() -> bool:
    """Rank 0 as far as the environment tells before the strategy starts (launchers set these variables)."""
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """The checkpoint to resume from: ``ckpt_path``, or with ``resume=auto`` the newest ``last*.ckpt`` in
    ``<run dir>/checkpoints`` (None: start fresh)."""
    resume, ckpt_path = cfg.get("resume"), cfg.get("ckpt_path")
    if resume not in (None, False, "auto"):
        raise ConfigError(f"resume must be null or auto, got {resume!r}; to start from a file use ckpt_path=<file>")
    if ckpt_path:
        if resume:
            raise ConfigError("give either resume=auto or ckpt_path=<file>, not both")
        if not Path(ckpt_path).is_file():
            raise ConfigError(f"ckpt_path={ckpt_path} does not exist")
        return str(ckpt_path)
    if not resume:
        return None
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    if _is_first_process():  # temp files of a save that was killed half-way
        for stale in ckpt_dir.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
    candidates = sorted(ckpt_dir.glob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        log.info("resume=auto: no last*.ckpt in %s, starting from scratch", ckpt_dir)
        return None
    log.info("resume=auto: continuing from %s", candidates[-1])
    return str(candidates[-1])


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temporary file in the target directory, fsynced, then renamed over the target
    (``crnn_lit.atomic.atomic_write``).

    A process killed during a save leaves the previous checkpoint intact (plus a ``.<name>.*.tmp`` that
    ``resume=auto`` removes). Lightning's own save stages the file in the system temp directory and moves it,
    which is a rename only when that directory is on the same filesystem as the run (often not on clusters).
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        with atomic_write(path) as f:
            torch.save(checkpoint, f)


# --- the learning rate of a global batch -----------------------------------------------------------------------
LR_SCALING = (None, "linear", "sqrt")


def scaled_lr(lr: float, global_batch: int, rule: str | None, reference_batch: int) -> float:
    """``lr`` for ``global_batch`` samples per optimizer step when ``lr`` was tuned at ``reference_batch``: the
    linear rule (Goyal et al. 2017, with warm-up: one-cycle's) multiplies by global / reference, the square-root
    rule (the safer start for AdamW and Adadelta) by its square root; None keeps ``lr``."""
    if rule not in LR_SCALING:
        raise ConfigError(f"lr_scaling must be null, linear or sqrt, got {rule!r}")
    ratio = global_batch / reference_batch
    return lr if rule is None else lr * (ratio if rule == "linear" else ratio ** 0.5)




class ExitOnSigterm:
    """While the evaluation after ``fit`` runs (training done, ``last.ckpt`` saved), a SIGTERM ends the process with
    status 0 and one line, instead of the default 143: a preemption then, like one during training, is a normal
    end for the scheduler, and ``resume=auto`` finishes the run (it resumes at the end, validates the best
    checkpoint and writes result.json). Main thread only (where signal handlers live)."""

    def __enter__(self):
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._exit)
        return self

    @staticmethod
    def _exit(signum, frame) -> None:
        log.warning("SIGTERM after training: last.ckpt holds the finished run; result.json is written by a "
                    "rerun with resume=auto")
        sys.exit(0)

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def slurm_plugins() -> list:
    """Inside a SLURM job: Lightning's SLURM environment without its auto-requeue, so the launcher's handler is the
    only one that requeues (submitit's, run by LastCheckpoint after it saved the step reached). Lightning's would
    save ``hpc_ckpt_<n>.ckpt`` (which resume=auto does not read) from inside its signal handler, mid-step, on every
    rank at a different moment, and listens for SIGUSR1, which submitit does not send. Elsewhere: nothing."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


# --- DDP under Hydra ---------------------------------------------------------------------------------------
# Hydra overrides that must reach the children too (everything else about directories, sweeps and launchers
# is replaced: the children join this job, in this job's directory, as a single run)
_FORWARDED_HYDRA_OVERRIDES = ("hydra.job.chdir", "hydra.job.env_set", "hydra.job.env_copy", "hydra.verbose")


def _hydra_quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ddp_child_command(local_rank: int) -> tuple[list[str], str]:
    """Command line and cwd for DDP rank ``local_rank`` (> 0) of the current Hydra job.

    Replaces Lightning's Hydra variant, which re-runs ``sys.argv`` with ``hydra.run.dir`` added: inside a
    multirun that re-runs the whole sweep (``-m a=1,2`` or an Optuna study sampling its own values) in every
    child, with new output directories. Here the children get exactly this job's overrides (the values the
    sweeper chose), its output directory, single-run mode, no ``.hydra`` copy and no log file of their own.
    """
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    import __main__

    job = HydraConfig.get()
    if getattr(__main__, "__spec__", None) is None:
        command = [sys.executable, os.path.abspath(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    forwarded = [o for o in job.overrides.hydra if o.lstrip("+~").startswith(_FORWARDED_HYDRA_OVERRIDES)]
    command += [*job.overrides.task, *forwarded, f"hydra.run.dir={_hydra_quote(job.runtime.output_dir)}",
                "hydra.mode=RUN", "hydra.output_subdir=null", f"hydra.job.name=ddp_rank{local_rank}",
                "hydra/job_logging=stdout"]
    return command, get_original_cwd()


def route_ddp_children_to_this_job() -> None:
    """Inside a Hydra job, make Lightning start DDP ranks > 0 with ``ddp_child_command`` (no-op outside Hydra).
    Lightning has no hook for the child command line, hence the patch of its module function."""
    from hydra.core.hydra_config import HydraConfig
    from lightning.pytorch.strategies.launchers import subprocess_script

    if not HydraConfig.initialized():
        return
    if not hasattr(subprocess_script, "_hydra_subprocess_cmd"):  # Lightning changed: fail loudly, not silently
        raise RuntimeError("lightning.pytorch.strategies.launchers.subprocess_script._hydra_subprocess_cmd is gone; "
                           "crnn_lit.training.runtime.ddp_child_command needs updating for this Lightning version")
    subprocess_script._hydra_subprocess_cmd = ddp_child_command
