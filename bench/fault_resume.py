"""Fault test: train, `kill -9` the process mid-epoch (several times), restart with `resume=auto`, and check
that every checkpoint left behind loads, how many steps each kill lost, and that the run that survived the
kills ends with the same weights as one that never stopped.

    python bench/fault_resume.py                      # writes bench/results/fault_resume.json
    python bench/fault_resume.py --kills 5 --every 4  # more kills, last.ckpt every 4 steps
    python bench/fault_resume.py --signal TERM --num-workers 1 --save-kills 0 --out /tmp/term.json
        # SIGTERM to the whole process group instead (loader workers included, as `timeout` and SLURM send it):
        # every stop must exit 0 having saved the step reached (0 steps lost)

A second part kills processes that do nothing but save checkpoints (so most kills land inside a write), with
crnn_lit's AtomicCheckpointIO and with Lightning's stock TorchCheckpointIO, whose save stages the file in the
system temp directory and moves it: on a different filesystem (TMPDIR=/dev/shm here, node-local /tmp vs a shared
filesystem on clusters) that move is a copy, and a kill during the copy leaves a torn checkpoint.

Each training process is `python -m crnn_lit.train` (CPU, one thread) on the embedded renderer with the light
model; steps are reported through a small callback (this module, on PYTHONPATH) writing the global step to a file.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
from record import write

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


class StepFile(L.Callback):
    """Writes the global step to ``path`` after every optimizer step and when training stops on an exception
    (e.g. a preemption signal), and the step training started at to ``path.start``."""

    def __init__(self, path: str):
        self.path = Path(path)

    def on_train_start(self, trainer, pl_module) -> None:
        _write_atomically(self.path.with_suffix(".start"), trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        _write_atomically(self.path, trainer.global_step)

    def on_exception(self, trainer, pl_module, exception) -> None:
        _write_atomically(self.path, trainer.global_step)


def _write_atomically(path: Path, step: int) -> None:
    """A reader polling the file (a test waiting for a step) never sees it empty between truncate and write; every
    rank writes it, so each stages its own temporary file."""
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(f"{step}\n")
    os.replace(staged, path)


def _overrides(run_dir: Path, args) -> list[str]:
    return [
        f"hydra.run.dir={run_dir}", "resume=auto", f"seed={args.seed}",
        f"data.samples_per_epoch={args.samples_per_epoch}", f"data.batch_size={args.batch_size}",
        f"data.num_workers={args.num_workers}", "data.val.length=64", "data.eval_batch_size=64", f"trainer.max_epochs={args.epochs}",
        "trainer.num_sanity_val_steps=0", f"callbacks.last_checkpoint.every_n_train_steps={args.every}",
        "~callbacks.progress_bar", "logger=csv", "trainer.log_every_n_steps=5",
        "+callbacks.steps._target_=fault_resume.StepFile", f"+callbacks.steps.path={run_dir}/step.txt",
    ]


def _start(run_dir: Path, args) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join([str(BENCH), os.environ.get("PYTHONPATH", "")])}
    with open(run_dir.parent / f"{run_dir.name}.log", "a") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-m", "crnn_lit.train", *_overrides(run_dir, args)], cwd=ROOT,
                                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # a process group of its own, to signal as a whole


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _checkpoint(path: Path) -> dict:
    """Whether ``path`` loads (weights-only, as resume does) and its global step."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return {"intact": True, "global_step": int(ckpt["global_step"]), "bytes": path.stat().st_size}
    except Exception as err:  # noqa: BLE001 - any failure to read is what we are looking for
        return {"intact": False, "error": f"{type(err).__name__}: {err}"}


_SAVER = """
import sys, torch
from crnn_lit.training.runtime import AtomicCheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
io = AtomicCheckpointIO() if sys.argv[1] == "atomic" else TorchCheckpointIO()
state = {"w": torch.randn(int(sys.argv[3]))}
step = 0
while True:
    step += 1
    state["global_step"] = step
    io.save_checkpoint(state, sys.argv[2])
    print(step, flush=True)
"""


def save_stress(kind: str, target: Path, kills: int, floats: int, rng: random.Random, staging: Path | None) -> dict:
    """Kill a process that saves checkpoints in a loop ``kills`` times; count torn files at ``target``.

    ``staging``: TMPDIR of the saving process (a private directory, removed afterwards)."""
    import shutil

    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if staging is not None:
        staging.mkdir(parents=True, exist_ok=True)
        env["TMPDIR"] = str(staging)
    torn = inside_write = 0
    try:
        for _ in range(kills):
            proc = subprocess.Popen([sys.executable, "-c", _SAVER, kind, str(target), str(floats)], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            proc.stdout.readline()  # one complete save exists
            time.sleep(rng.uniform(0.05, 0.6))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            leftovers = list(target.parent.glob(".*.tmp")) + (list(staging.iterdir()) if staging else [])
            inside_write += bool(leftovers)
            try:
                torch.load(target, weights_only=True)
            except Exception:  # noqa: BLE001 - a torn file fails in many ways
                torn += 1
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return {"io": kind, "staging_dir": "TMPDIR on another filesystem (tmpfs)" if staging else "default",
            "kills": kills, "checkpoint_mb": round(floats * 4 / 2**20, 1),
            "kills_that_left_a_partial_temp_file": inside_write, "torn_checkpoints": torn}


def _run_to_end(run_dir: Path, args, timeout: float) -> float:
    start = time.perf_counter()
    proc = _start(run_dir, args)
    if proc.wait(timeout=timeout) != 0:
        raise RuntimeError(f"training in {run_dir} failed, see {run_dir.parent / (run_dir.name + '.log')}")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--every", type=int, default=5, help="last.ckpt every N steps")
    parser.add_argument("--samples-per-epoch", type=int, default=640)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "bench_fault_resume")
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "fault_resume.json")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--save-kills", type=int, default=20, help="kills per checkpoint writer (0 = skip part 2)")
    parser.add_argument("--signal", choices=("KILL", "TERM"), default="KILL",
                        help="KILL: kill -9 the training process; TERM: SIGTERM to its whole process group")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers of the training runs")
    args = parser.parse_args(argv)

    import shutil

    import torch

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    steps_per_epoch = args.samples_per_epoch // args.batch_size
    total = steps_per_epoch * args.epochs
    rng = random.Random(args.seed)
    run_dir, reference_dir = args.workdir / "killed", args.workdir / "reference"
    step_file, ckpt = run_dir / "step.txt", run_dir / "checkpoints" / "last.ckpt"

    kills = []
    started = time.perf_counter()
    for i in range(args.kills):
        before = _checkpoint(ckpt)["global_step"] if ckpt.exists() else 0
        # kills spread over the whole run, past the next checkpoint, never on an epoch boundary
        target = max(before + args.every + 1, (i + 1) * total // (args.kills + 1) + rng.randint(0, args.every - 1))
        if target % steps_per_epoch == 0:
            target += 1
        if target >= total - 1:
            break
        proc = _start(run_dir, args)
        deadline = time.monotonic() + args.timeout
        while (_read_int(step_file) or 0) < target:
            if proc.poll() is not None:
                raise RuntimeError(f"training ended before step {target}: see {run_dir.parent / 'killed.log'}")
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"step {target} not reached")
            time.sleep(0.002)
        time.sleep(rng.uniform(0.0, 0.3))  # anywhere inside the next step, or inside a checkpoint write
        if args.signal == "KILL":
            os.kill(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=args.timeout)
        killed_at = _read_int(step_file)
        left = _checkpoint(ckpt)
        partial = sorted(p.name for p in ckpt.parent.glob(".*.tmp"))
        kills.append({
            "resumed_from_step": _read_int(step_file.with_suffix(".start")),
            "killed_after_step": killed_at,
            "epoch_at_kill": killed_at // steps_per_epoch,
            "step_in_epoch_at_kill": killed_at % steps_per_epoch,
            "checkpoint_step": left.get("global_step"),
            "checkpoint_intact": left["intact"],
            "steps_lost": None if not left["intact"] else killed_at - left["global_step"],
            "exit_status": status,
            "partial_temp_files_left": partial,  # a kill during a save: the temp file, never a torn last.ckpt
        })
        print(f"kill {len(kills)}: after step {killed_at}, last.ckpt at step {left.get('global_step')} "
              f"(intact: {left['intact']}), temp files left: {partial}", flush=True)

    resume_secs = _run_to_end(run_dir, args, args.timeout)
    final_start = _read_int(step_file.with_suffix(".start"))
    final = _checkpoint(ckpt)
    killed_total = time.perf_counter() - started
    reference_secs = _run_to_end(reference_dir, args, args.timeout)

    a = torch.load(ckpt, map_location="cpu", weights_only=True)
    b = torch.load(reference_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    max_diff = max(float((a["state_dict"][k].float() - v.float()).abs().max()) for k, v in b["state_dict"].items())
    result = {
        "command": " ".join(["python bench/fault_resume.py", *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"kills": args.kills, "signal": args.signal, "num_workers": args.num_workers,
                     "last_checkpoint_every_n_steps": args.every, "steps_per_epoch": steps_per_epoch,
                     "epochs": args.epochs, "total_steps": total, "batch_size": args.batch_size,
                     "model": "vgg_light + bilstm_light", "device": "cpu, 1 thread per process"},
        "kills": kills,
        "final_run": {"resumed_from_step": final_start, "final_step": final.get("global_step"),
                      "seconds": round(resume_secs, 1)},
        "all_checkpoints_intact": all(k["checkpoint_intact"] for k in kills) and final["intact"],
        "max_steps_lost": max((k["steps_lost"] or 0) for k in kills) if kills else 0,
        "steps_lost_bound": args.every,
        "weights_equal_to_uninterrupted_run": max_diff == 0.0,
        "max_abs_weight_difference": max_diff,
        "seconds_with_kills": round(killed_total, 1),
        "seconds_uninterrupted": round(reference_secs, 1),
    }
    if args.save_kills:
        floats = 25_000_000  # a 95 MB checkpoint: long enough writes that random kills land inside them
        shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
        staging = (lambda name: shm / f"crnn_fault_{os.getpid()}_{name}") if shm else (lambda name: None)
        result["save_stress"] = [
            save_stress(kind, args.workdir / f"stress_{kind}" / "last.ckpt", args.save_kills, floats, rng,
                        staging(kind))
            for kind in ("atomic", "lightning")
        ]
    return write(args.out, result)


if __name__ == "__main__":
    main()
