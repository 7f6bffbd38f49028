"""Preemption of real training processes: a signal to the whole process group (DataLoader workers included, as
``timeout`` and SLURM send it) saves the step reached and exits 0, under DDP too; submitit's time-limit signal
saves first, then lets submitit requeue the job, and the requeued job resumes. (The bit-exact resume after a
group SIGTERM is tests/test_fault.py; LastCheckpoint's decisions on their own are in tests/test_callbacks.py.)"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from test_scaling import TINY

TESTS = Path(__file__).resolve().parent
PREEMPTED = re.compile(r"preempted by (\S+) at step (\d+): saved (\S+); continue with resume=auto")


def _env(extra: dict | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "HYDRA_FULL_ERROR": "1",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])}
    return env | (extra or {})


def _start(cmd: list[str], cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """A process in a session (process group) of its own, so the test can signal the whole group."""
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _signal_group_at(proc: subprocess.Popen, step_file: Path, step: int, sig: signal.Signals, log: Path,
                     timeout: float = 120) -> int:
    """Waits until the run has trained ``step`` steps, sends ``sig`` to its process group, and returns its exit
    status (the group is killed if it does not end in time)."""
    deadline = time.monotonic() + timeout
    try:
        while _steps_trained(step_file) < step:
            assert proc.poll() is None, f"training ended before step {step}:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"step {step} not reached:\n{log.read_text()[-4000:]}"
            time.sleep(0.01)
        os.killpg(proc.pid, sig)
        return proc.wait(timeout=max(deadline - time.monotonic(), 10))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _steps_trained(step_file: Path) -> int:
    """The step the run wrote last, read once (-1 before its first step)."""
    text = step_file.read_text().strip() if step_file.is_file() else ""
    return int(text) if text else -1


def _preempted(log: Path) -> tuple[str, int]:
    lines = PREEMPTED.findall(log.read_text())
    assert len(lines) == 1, f"expected one preemption line:\n{log.read_text()[-4000:]}"
    name, step, path = lines[0]
    assert path.endswith("checkpoints/last.ckpt")
    return name, int(step)


def _step(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


@pytest.mark.timeout(180)
def test_ddp_group_sigterm_with_workers_saves_the_step_reached_on_both_ranks(tmp_path):
    """trainer=ddp_cpu, a loader worker per rank, last.ckpt every 0.1 s of training (time saves decided by rank 0's
    clock on both ranks): SIGTERM to the whole group, as ``timeout -s TERM`` sends it. Both ranks stop at the same
    step after saving it; exit 0, no deadlock, no DataLoader worker killed."""
    run, saves = tmp_path / "run", tmp_path / "saves"
    cmd = [sys.executable, "-m", "crnn_lit.train", "trainer=ddp_cpu", "rnn.num_layers=1", *TINY, "logger=none",
           "data.batch_size=8", "data.num_workers=1", "trainer.max_epochs=100", f"hydra.run.dir={run}",
           f"paths.root_dir={tmp_path}", f"paths.data_dir={ROOT / 'data'}",
           "callbacks.last_checkpoint.every_minutes=0.0017",
           "+callbacks.steps._target_=fault_resume.StepFile", f"+callbacks.steps.path={tmp_path}/step.txt",
           "+callbacks.saves._target_=runtime_helpers.RecordSaves", f"+callbacks.saves.out_dir={saves}"]
    log = tmp_path / "train.out"
    status = _signal_group_at(_start(cmd, tmp_path, _env(), log), tmp_path / "step.txt", 6, signal.SIGTERM, log)
    assert status == 0, log.read_text()[-4000:]
    assert "killed by signal" not in log.read_text()
    name, step = _preempted(log)
    assert name == "SIGTERM" and step >= 6
    assert _step(run / "checkpoints" / "last.ckpt") == step
    rank0, rank1 = ([int(s) for s in (saves / f"saves_rank{r}.txt").read_text().split()] for r in (0, 1))
    assert rank0 == rank1  # every save, time-based ones included, at the same step on both ranks
    # time saves happened mid-epoch too: how many depends on the step speed of the machine, at least one
    assert rank0[-1] == step and len([s for s in rank0 if s % 4]) >= 1


@pytest.mark.timeout(240)
def test_submitit_signal_saves_then_submitit_requeues_and_the_job_resumes(tmp_path):
    """A SLURM job as submitit runs it (``python -m submitit.core._submit``, its signal handlers installed) with a
    fake ``scontrol`` on PATH. SIGUSR2 — submitit's time-limit notice — to the job's process group mid-epoch:
    last.ckpt holds the step reached, then submitit's handler requeues the job (``scontrol requeue <job id>``, once:
    Lightning's auto-requeue is off) and exits. The requeued job (same job id, same pickle) resumes from that step
    with resume=auto and finishes."""
    folder, run, fakebin = tmp_path / "submitit", tmp_path / "run", tmp_path / "bin"
    folder.mkdir()
    fakebin.mkdir()
    (fakebin / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/scontrol.calls\n')
    (fakebin / "scontrol").chmod(0o755)

    from submitit.core.utils import DelayedSubmission, JobPaths

    from runtime_helpers import TrainJob

    overrides = [*TINY, "logger=none", "data.num_workers=1", "data.samples_per_epoch=128", "trainer.max_epochs=2",
                 "resume=auto",
                 f"hydra.run.dir={run}", f"paths.root_dir={tmp_path}", f"paths.data_dir={ROOT / 'data'}",
                 "+callbacks.steps._target_=fault_resume.StepFile", f"+callbacks.steps.path={tmp_path}/step.txt"]
    job = DelayedSubmission(TrainJob(), overrides)
    job.set_timeout(60, 3)
    paths = JobPaths(folder, job_id="4242", task_id=0)
    job.dump(paths.submitted_pickle)
    env = _env({"PATH": f"{fakebin}{os.pathsep}{os.environ['PATH']}", "SUBMITIT_EXECUTOR": "slurm",
                "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "crnn", "SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1",
                "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_JOB_NUM_NODES": "1",
                "SLURM_JOB_NODELIST": "localhost"})
    cmd = [sys.executable, "-m", "submitit.core._submit", str(folder)]

    first = tmp_path / "first.out"
    status = _signal_group_at(_start(cmd, tmp_path, env, first), tmp_path / "step.txt", 3, signal.SIGUSR2, first)
    name, step = _preempted(first)
    assert name == "SIGUSR2" and step >= 3 and step % 8  # mid-epoch (8 steps per epoch)
    assert _step(run / "checkpoints" / "last.ckpt") == step
    assert (tmp_path / "scontrol.calls").read_text() == "requeue 4242\n"
    text = first.read_text()
    assert text.index("preempted by SIGUSR2") < text.index("Requeued job 4242")  # saved first, then requeued
    assert status == 255  # submitit's own exit after a requeue (sys.exit(-1)); SLURM has the job pending again
    assert "auto-requeueing enabled" not in text and not list(run.glob("hpc_ckpt*"))  # Lightning's requeue is off

    second = tmp_path / "second.out"
    proc = _start(cmd, tmp_path, env, second)
    assert proc.wait(timeout=180) == 0, second.read_text()[-4000:]
    assert int((tmp_path / "step.start").read_text()) == step  # resumed at the step reached
    assert _step(run / "checkpoints" / "last.ckpt") == 16
    assert (tmp_path / "scontrol.calls").read_text() == "requeue 4242\n"  # not requeued again
