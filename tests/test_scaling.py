"""Scaling, sweeps and resume on CPU: DDP (gloo, 2 processes), multiruns with one W&B run per job, an Optuna study,
exact resume after a crash, atomic checkpoints, and W&B never blocking."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import InterpolationResolutionError

from conftest import FAST, ROOT, compose_train
from corpus import encode, good_entries, write_folder
from crnn_lit.config import ConfigError, compose_config
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.data.sources.mixed import HoldoutSplit, holdout_score
from crnn_lit.train import train
from crnn_lit.training.runtime import AtomicCheckpointIO, ddp_child_command, resolve_checkpoint
from crnn_lit.training.tracking import finish_wandb
from runtime_helpers import read_wandb_run

TESTS = Path(__file__).resolve().parent
# tiny runs of the real CLI (the validation set is rendered: keep it small)
TINY = [o for o in FAST if not o.startswith("logger=")] + ["data.val.length=32", "~callbacks.progress_bar",
                                                            "trainer.log_every_n_steps=1"]


def run_cli(args: list[str], tmp_path: Path, env_extra: dict | None = None, drop_env: tuple[str, ...] = (),
            timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m crnn_lit.train <args>`` with outputs under ``tmp_path`` (paths.root_dir) and no stdin."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env.update({"PYTHONPATH": os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1",
                "HYDRA_FULL_ERROR": "1", **(env_extra or {})})
    cmd = [sys.executable, "-m", "crnn_lit.train", *args, f"paths.root_dir={tmp_path}",
           f"paths.data_dir={ROOT / 'data'}"]
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def only_child(path: Path) -> Path:
    children = [p for p in path.iterdir()]
    assert len(children) == 1, f"expected one entry in {path}, found {sorted(p.name for p in children)}"
    return children[0]


# --- DDP -----------------------------------------------------------------------------------------------------
def test_ddp_cpu_two_ranks_train_on_different_samples_in_one_run_dir(tmp_path):
    keys_dir = tmp_path / "keys"
    # a multirun of one job: Lightning's own Hydra launcher would re-run the sweep in rank 1 (a second sweep dir)
    proc = run_cli(["-m", "trainer=ddp_cpu", "rnn.num_layers=1", *TINY, "data.batch_size=8", "logger=csv",
                    "+callbacks.keys._target_=runtime_helpers.RecordKeys", f"+callbacks.keys.out_dir={keys_dir}"],
                   tmp_path)
    ranks = {}
    for rank in (0, 1):
        rows = [json.loads(line) for line in (keys_dir / f"keys_rank{rank}.txt").read_text().splitlines()]
        ranks[rank] = [k for row in rows for k in row["keys"]]
        assert len(rows) == 4  # 64 samples / (8 per batch × 2 ranks)
    assert not set(ranks[0]) & set(ranks[1]), "both ranks trained on the same samples"
    assert len(set(ranks[0]) | set(ranks[1])) == 64
    assert "global step: 4" in proc.stdout

    outputs = tmp_path / "outputs" / "train"
    assert [p.name for p in outputs.iterdir()] == ["multiruns"]  # no run dir created by a child
    sweep = only_child(outputs / "multiruns")
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "multirun.yaml", "summary.csv"]
    job = sweep / "0"
    assert sorted(p.name for p in job.iterdir()) == [".hydra", "checkpoints", "csv", "learning_curve.csv",
                                                     "result.json", "train.log"]
    with (job / "learning_curve.csv").open() as f:
        assert [row["images"] for row in csv.DictReader(f)] == ["64"]  # rank 0 counts both ranks' images
    assert (job / "checkpoints" / "last.ckpt").is_file()


def test_ddp_builds_the_size_index_of_each_archive_once(tmp_path):
    """Two ranks over a new LMDB tree (DTRB layout, no size records, no index yet): each archive's size index is
    built by one rank (rank 0, the other waits at a barrier and reads it), not by both at once."""
    from corpus import write_lmdb_tree

    root = write_lmdb_tree(tmp_path / "data", n=32)
    proc = run_cli(["trainer=ddp_cpu", "rnn.num_layers=1", *[o for o in TINY if not o.startswith("data.val.")],
                    "data=lmdb", f"data.root={root}", "data.samples_per_epoch=null", "data.batch_size=8",
                    "logger=none", "hydra.job_logging.root.level=INFO"], tmp_path)
    builds = re.findall(r"building the size index of (\S+) \(", proc.stdout + proc.stderr)
    archives = ["training/MJ/MJ_train", "training/ST", "validation"]
    assert sorted(builds) == sorted(str((root / a).resolve()) for a in archives), builds  # once each
    assert all((root / a / "crnn_lit_sizes.npz").is_file() for a in archives)
    assert "global step: 4" in proc.stdout  # 64 samples / (8 per batch × 2 ranks)


def test_ddp_trains_on_when_a_rank_gets_a_batch_of_rejected_samples(tmp_path):
    """Tall narrow crops (16 px wide once resized: 5 CTC frames) labelled with 16 letters are all rejected, and
    bucketing groups them (and gives the ranks of a step neighbouring widths), so a whole batch comes out empty
    while the other rank's batch of the step keeps a sample. With one rank holding such a batch while the other
    trains, both step on (a zero loss from zero images, CRNNSystem.no_sample_loss); before, rank 1 raised and rank 0
    died in gloo. The rejections of both ranks are counted."""
    rng = np.random.default_rng(0)
    narrow = [(f"narrow/n{i}.png", encode(rng.integers(0, 255, (64, 8), dtype=np.uint8)), "abcdefghijklmnop")
              for i in range(8)]  # 7 in the training split: one empty batch, beside one of 3 rejected + 1 kept
    root = write_folder(tmp_path / "crops", good_entries(20) + narrow)
    keys_dir = tmp_path / "keys"
    proc = run_cli(["-m", "trainer=ddp_cpu", "rnn.num_layers=1", "data=folder", f"data.root={root}",
                    "data.mix.holdout=0.2", "data.batch_size=4", "data.eval_batch_size=32", "data.num_workers=0",
                    "logger=none", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "~callbacks.progress_bar",
                    "+callbacks.keys._target_=runtime_helpers.RecordKeys", f"+callbacks.keys.out_dir={keys_dir}"],
                   tmp_path, timeout=180)
    steps = [[json.loads(line)["keys"] for line in (keys_dir / f"keys_rank{r}.txt").read_text().splitlines()]
             for r in (0, 1)]
    assert len(steps[0]) == len(steps[1]) >= 3
    assert any(bool(a) != bool(b) for a, b in zip(*steps)), steps  # one rank empty while the other trains
    assert f"global step: {len(steps[0])}" in proc.stdout
    train_split = HoldoutSplit(FolderDataset(root), "train", 0.2)
    rejected = sum(train_split.key(i).startswith("narrow/") for i in range(len(train_split)))
    assert sum(len(keys) for rank in steps for keys in rank) + rejected == len(train_split)
    assert f"epoch 0: skipped training samples: too_long={rejected}\n" in proc.stdout  # both ranks' counts


def _split_entries(entries: list, part: str, count: int, fraction: float) -> list:
    """The first ``count`` of ``entries`` whose path a HoldoutSplit of ``fraction`` puts on side ``part``."""
    chosen = [e for e in entries if (holdout_score(e[0]) < fraction) == (part == "val")][:count]
    assert len(chosen) == count
    return chosen


def test_ddp_validation_ends_when_every_validation_sample_of_a_rank_is_rejected(tmp_path):
    """Issue #33, item 1: validation holds 4 tall narrow crops with 14-letter labels (too long for their CTC frames:
    all rejected) and 4 good ones, in batches of 4 sorted by width, so one rank scores nothing. That rank used to
    skip the step's logging and wait in another collective than the other rank: both hung after epoch 0. Now both
    meet in the epoch-end metric sync; two epochs finish and the metrics are the scoring rank's."""
    rng = np.random.default_rng(0)
    narrow = [(f"narrow/n{i}.png", encode(rng.integers(0, 255, (48, 12), dtype=np.uint8)), "abcdefghijklmn")
              for i in range(200)]
    good = good_entries(400)
    entries = [*_split_entries(narrow, "val", 4, 0.2), *_split_entries(good, "val", 4, 0.2),
               *_split_entries(good, "train", 24, 0.2)]
    root = write_folder(tmp_path / "crops", entries)
    proc = run_cli(["trainer=ddp_cpu", "rnn.num_layers=1", "data=folder", f"data.root={root}", "data.mix.holdout=0.2",
                    "data.batch_size=4", "data.eval_batch_size=4", "data.num_workers=0", "logger=csv",
                    "trainer.max_epochs=2", "trainer.num_sanity_val_steps=2", "~callbacks.progress_bar",
                    "hydra.run.dir=run"], tmp_path, timeout=240)
    assert "global step: 6" in proc.stdout  # 24 training crops / (4 × 2 ranks) × 2 epochs
    with (tmp_path / "run" / "learning_curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["3", "6"]
    assert all(math.isfinite(float(r["val/loss"])) and 0 <= float(r["val/cer"]) for r in rows)


def test_ddp_validation_ends_when_a_ranks_validation_shard_is_empty(tmp_path):
    """One validation crop for two ranks: rank 0 validates it, rank 1's only batch is empty (the sampler gives
    every rank as many batches and drops no sample). Both meet at the epoch-end sync, and the metrics count the
    one crop."""
    entries = [*_split_entries(good_entries(400), "val", 1, 0.2), *_split_entries(good_entries(400), "train", 16, 0.2)]
    root = write_folder(tmp_path / "crops", entries)
    proc = run_cli(["trainer=ddp_cpu", "rnn.num_layers=1", "data=folder", f"data.root={root}", "data.mix.holdout=0.2",
                    "data.batch_size=4", "data.eval_batch_size=4", "data.num_workers=0", "logger=none",
                    "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0", "~callbacks.progress_bar",
                    "hydra.run.dir=run"], tmp_path, timeout=240)
    assert "global step: 2" in proc.stdout  # 16 training crops / (4 × 2 ranks)
    with (tmp_path / "run" / "learning_curve.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and math.isfinite(float(rows[0]["val/loss"]))
    assert float(rows[0]["val/acc"]) in (0.0, 1.0)  # one crop scored: right or wrong, nothing in between


def test_trainer_ddp_config_trains_on_cpu_with_only_the_accelerator_overridden(tmp_path):
    """conf/trainer/ddp.yaml as GPUs run it (bf16-mixed, DDP options) on two CPU processes: only the accelerator,
    the device count (-1 = all GPUs) and the backend changed (SyncBN, GPU-only, is off by default)."""
    out = tmp_path / "precision"
    proc = run_cli(["-m", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                    "trainer.strategy.process_group_backend=gloo", "rnn.num_layers=1",
                    *TINY, "+callbacks.precision._target_=runtime_helpers.RecordPrecision",
                    f"+callbacks.precision.out_dir={out}"], tmp_path)
    for rank in (0, 1):  # 64 samples / (16 per batch × 2 ranks) = 2 steps, each in bf16
        record = json.loads((out / f"precision_rank{rank}.json").read_text())
        assert record == {"precision": "bf16-mixed", "logits": ["torch.bfloat16"] * 2, "step": 2}
    loss = float(re.search(r"train/loss=(\S+?),", proc.stdout).group(1))
    assert math.isfinite(loss) and loss > 0 and "global step: 2" in proc.stdout


def test_slurm_launcher_composes_a_runnable_job_or_asks_for_the_devices(tmp_path):
    cfg = compose_config(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=4"],
                         return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"] == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (4, 8, 8)
    assert launcher["cpus_per_task"] >= 10  # 11 loader workers (num_workers auto) + the training process

    message = ("hydra/launcher=slurm needs trainer.devices as a positive number (SLURM reserves nodes, tasks and "
               "GPUs per node at submission), got -1: give it, e.g. trainer.devices=8")
    cfg = compose_config(["hydra/launcher=slurm", "trainer=ddp"], return_hydra_config=True)  # devices: -1
    with pytest.raises(InterpolationResolutionError, match=re.escape(message)):
        OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    # the command line stops with that one line, before anything is submitted or written
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "crnn_lit.train", "-m", "hydra/launcher=slurm", "trainer=ddp",
                           f"paths.root_dir={tmp_path}"], check=False, cwd=tmp_path, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"crnn_lit: error: {message}"])
    assert list(tmp_path.iterdir()) == []


def test_the_rendered_sbatch_script_gives_srun_the_cpus_per_task(tmp_path, monkeypatch):
    """The sbatch script submitit writes for hydra/launcher=slurm (parameters handed over as the launcher hands
    them): `#SBATCH --cpus-per-task=12` and the same on the srun line, which Slurm >= 22.05 no longer inherits."""
    submitit = pytest.importorskip("submitit")
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))  # "srun is there"
    cfg = compose_config(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "hydra.launcher.cpus_per_task=10"],
                         return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    params.pop("_target_")
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path, slurm_max_num_timeout=params.pop("max_num_timeout"))
    params.pop("submitit_folder")
    base = set(OmegaConf.structured(BaseQueueConf).keys())  # SlurmLauncher.launch: non-base keys get "slurm_"
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python -m crnn_lit.train", "uid")
    srun = [line for line in script.splitlines() if line.startswith("srun ")]
    assert "#SBATCH --cpus-per-task=10" in script.splitlines()
    assert len(srun) == 1 and " --cpus-per-task=10 " in srun[0], srun


def test_ddp_child_command_is_this_job_not_the_sweep(monkeypatch):
    """What rank 1 is started with, for a job of an Optuna multirun (no GPU or second process needed)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict

    from crnn_lit.config import compose_config

    cfg = compose_config(["hparams_search=optuna", "trainer=ddp_cpu", "optimizer.lr=0.003", "rnn.num_layers=2"],
                         return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = "/runs/sweep it/3"
        cfg.hydra.overrides.hydra = ["hydra.mode=MULTIRUN", "hydra.sweep.dir=/runs/sweep it", "hydra.job.chdir=False"]
    HydraConfig().set_config(cfg)
    monkeypatch.setattr(sys, "argv", ["train.py", "-m", "hparams_search=optuna", "trainer=ddp_cpu"])
    command, _ = ddp_child_command(1)
    args = command[3:]
    assert "-m" not in args and "--multirun" not in args
    assert args[:4] == ["hparams_search=optuna", "trainer=ddp_cpu", "optimizer.lr=0.003", "rnn.num_layers=2"]
    assert "hydra.run.dir='/runs/sweep it/3'" in args and "hydra.mode=RUN" in args
    assert "hydra.output_subdir=null" in args and "hydra.job.chdir=False" in args
    assert not any(a.startswith("hydra.sweep") for a in args)
    assert OmegaConf.select(cfg, "hydra.sweeper.sampler.seed") == 1234  # the study itself is seeded too


# --- multirun + W&B ---------------------------------------------------------------------------------------
def test_multirun_gives_one_offline_wandb_run_per_job(tmp_path):
    run_cli(["-m", "rnn.num_layers=1,2", *TINY, "logger=wandb", "logger.wandb.mode=offline",
             "logger.wandb.log_model=true", "logger.wandb.val_samples=4"], tmp_path)
    sweep = only_child(tmp_path / "outputs" / "train" / "multiruns")
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0", "1"]
    runs = []
    for job, layers in zip(jobs, (1, 2)):
        (run_dir,) = (job / "wandb").glob("offline-run-*")
        run = read_wandb_run(run_dir)
        runs.append(run)
        assert run["config"]["rnn"]["num_layers"] == layers
        assert run["id"] == (job / "wandb_run_id.txt").read_text().strip()
        assert run["group"] == sweep.name and run["name"] == f"{sweep.name}/{job.name}"
        expected = {"train/loss", "train/lr", "train/images_per_sec", "data/padding_waste", "val/acc", "val/cer",
                    "val/ned", "val/loss"}
        assert expected <= set(run["history"]), expected - set(run["history"])
        assert run["history"]["val/samples/_type"] == "table-file" and run["history"]["val/samples/nrows"] == 4
        (artifact,) = [a for a in run["artifacts"] if a["type"] == "model"]
        assert artifact["type"] == "model" and "best" in artifact["aliases"]
        assert artifact["files"][0].startswith("epoch000")
    assert runs[0]["id"] != runs[1]["id"]


def test_a_sweep_writes_summary_csv_and_names_the_best_job(tmp_path):
    proc = run_cli(["-m", "optimizer.lr=1e-3,3e-2", *TINY, "logger=none", "optimized_metric=val/loss",
                    "optimized_mode=min"], tmp_path)
    sweep = only_child(tmp_path / "outputs" / "train" / "multiruns")
    with (sweep / "summary.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["job"], r["optimizer.lr"], r["status"], r["metric"]) for r in rows] == [
        ("0", "0.001", "done", "val/loss"), ("1", "0.03", "done", "val/loss")]
    for row in rows:  # the best checkpoint's validation loss, and that checkpoint, as the job's result.json says
        result = json.loads((sweep / row["job"] / "result.json").read_text())
        assert float(row["best_value"]) == pytest.approx(result["metrics"]["val/loss"])
        assert Path(row["best_checkpoint"]).is_file() and Path(row["best_checkpoint"]).parent.parent.name == row["job"]
        assert row["overrides"].startswith(f"optimizer.lr={row['optimizer.lr']} ")
    best = min(rows, key=lambda r: float(r["best_value"]))
    assert rows[0]["best_value"] != rows[1]["best_value"]
    assert (f"sweep: best of 2 jobs: job {best['job']} (optimizer.lr={best['optimizer.lr']}): val/loss = "
            f"{float(best['best_value']):.4f}; checkpoint {best['best_checkpoint']}") in proc.stdout
    assert f"sweep summary: {sweep / 'summary.csv'}" in proc.stdout


def test_wandb_without_key_or_tty_runs_offline_and_never_blocks(tmp_path):
    start = time.perf_counter()
    run_cli([*TINY, "data.samples_per_epoch=32", "logger=wandb", "hydra.run.dir=run"], tmp_path,
            env_extra={"HOME": str(tmp_path)}, drop_env=("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"),
            timeout=180)
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert time.perf_counter() - start < 120


def test_wandb_online_with_unreachable_server_falls_back_to_offline(tmp_path, monkeypatch):
    from crnn_lit.training.tracking import wandb_logger

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("WANDB_MODE", raising=False)
    logger = wandb_logger(mode="auto", save_dir=str(tmp_path), init_timeout=3)
    try:
        start = time.perf_counter()
        run = logger.experiment
        assert run.settings.mode == "offline"
        assert time.perf_counter() - start < 60
        assert run.id == (tmp_path / "wandb_run_id.txt").read_text().strip()
    finally:
        finish_wandb()


# --- Optuna -------------------------------------------------------------------------------------------------
def test_optuna_sweep_of_two_trials_returns_a_float(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    run_cli(["hparams_search=optuna", "hydra.sweeper.n_trials=2", "debug=fdr", *TINY, "logger=none"], tmp_path)
    sweep = only_child(tmp_path / "outputs" / "train" / "multiruns")
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert isinstance(results["best_value"], float) and 0.0 <= results["best_value"] <= 1.0
    assert set(results["best_params"]) == {"optimizer.lr", "rnn.hidden_size", "rnn.num_layers", "scheduler.pct_start"}
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0", "1"]


# --- resume ---------------------------------------------------------------------------------------------------
def _ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    """8 steps (2 epochs × 4); a crash after step 7 loses step 7; resume=auto continues from the step-6 checkpoint
    mid-epoch and ends with the weights and optimizer state of an uninterrupted run, bit for bit — augmentation
    included (it is seeded per batch)."""
    common = [*TINY, "trainer.max_epochs=2", "callbacks.last_checkpoint.every_n_train_steps=3", "augment=strong",
              "+callbacks.keys._target_=runtime_helpers.RecordKeys"]
    ref_dir, run_dir = tmp_path / "reference", tmp_path / "run"
    train(compose_train([*common, "logger=none", f"+callbacks.keys.out_dir={ref_dir}"], ref_dir))

    logged = ["logger=[csv,wandb]", "logger.wandb.mode=offline"]
    crashing = compose_train([*common, *logged, f"+callbacks.keys.out_dir={run_dir}/first",
                              "+callbacks.crash._target_=runtime_helpers.CrashAt", "+callbacks.crash.step=7"], run_dir)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(crashing)
    finish_wandb()
    assert _ckpt(run_dir / "checkpoints" / "last.ckpt")["global_step"] == 6

    resumed = compose_train([*common, *logged, "resume=auto", f"+callbacks.keys.out_dir={run_dir}/second"], run_dir)
    try:
        train(resumed)
    finally:
        finish_wandb()

    def steps(path):  # step → keys of the batch trained at that step
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return {row["step"]: row["keys"] for row in rows}

    reference, first, second = (steps(p / "keys_rank0.txt") for p in (ref_dir, run_dir / "first", run_dir / "second"))
    assert sorted(second) == [6, 7]  # continued after the checkpoint, mid-epoch; step 7 is redone
    assert {**first, **second} == reference  # same batches, in the same order, as the uninterrupted run

    ref, out = _ckpt(ref_dir / "checkpoints" / "last.ckpt"), _ckpt(run_dir / "checkpoints" / "last.ckpt")
    assert out["global_step"] == ref["global_step"] == 8 and out["epoch"] == ref["epoch"]
    for name, value in ref["state_dict"].items():
        assert torch.equal(value, out["state_dict"][name]), name
    for ref_state, out_state in zip(ref["optimizer_states"][0]["state"].values(),
                                    out["optimizer_states"][0]["state"].values()):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(ref_state[key], out_state[key]), key
    assert ref["lr_schedulers"][0]["last_epoch"] == out["lr_schedulers"][0]["last_epoch"] == 8

    # the W&B run continues (same id) and metrics.csv keeps the rows written before the crash
    run_ids = {read_wandb_run(d)["id"] for d in (run_dir / "wandb").glob("offline-run-*")}
    assert run_ids == {(run_dir / "wandb_run_id.txt").read_text().strip()}
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 2
    rows = (run_dir / "csv" / "metrics.csv").read_text().splitlines()
    assert sum(1 for r in rows if ",0,3," in r or ",0,4," in r) >= 1  # epoch 0 rows from the first process

    # the learning curve continues across the crash: same steps and image counts as the uninterrupted run,
    # and the compute counters keep growing instead of restarting at zero
    def curve(run):
        with (run / "learning_curve.csv").open() as f:
            return list(csv.DictReader(f))

    ref_curve, run_curve = curve(ref_dir), curve(run_dir)
    assert [(r["step"], r["images"]) for r in run_curve] == [(r["step"], r["images"]) for r in ref_curve]
    assert [r["step"] for r in run_curve] == ["4", "8"]
    assert 0 < float(run_curve[0]["cpu_hours"]) < float(run_curve[1]["cpu_hours"])
    assert 0 < float(run_curve[0]["wall_hours"]) < float(run_curve[1]["wall_hours"])


BEST_EACH_EPOCH = ["+callbacks.epoch_metric._target_=runtime_helpers.EpochAsMetric", "optimized_metric=val/epoch",
                   "callbacks.last_checkpoint.every_minutes=null"]  # last.ckpt only after validations and at the end


def _best_agrees(run_dir: Path, epochs: int) -> None:
    """The run's one best checkpoint is the last epoch's (val/epoch grows), and result.json, last.ckpt's record and
    the files on disk all name it."""
    ckpts = run_dir / "checkpoints"
    best = [p.name for p in ckpts.glob("epoch*.ckpt")]
    assert best == [f"epoch{epochs - 1:03d}-epoch{float(epochs):.4f}.ckpt"], sorted(p.name for p in ckpts.iterdir())
    result = json.loads((run_dir / "result.json").read_text())
    assert Path(result["best_checkpoint"]).name == best[0] and result["best_value"] == float(epochs)
    recorded = [s for k, s in _ckpt(ckpts / "last.ckpt")["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert [Path(s["best_model_path"]).name for s in recorded] == best


def test_resume_between_validations_keeps_the_best_checkpoint_record(tmp_path):
    """A crash in epoch 1, after epoch 0's validation saved last.ckpt and the new best: the resumed run knows that
    best (last.ckpt is written after ModelCheckpoint's bookkeeping), so it replaces it, leaving one top-1 file.
    Before, last.ckpt held the record of the validation before and epoch000's file stayed beside epoch002's."""
    common = [*TINY, "trainer.max_epochs=3", "logger=none", *BEST_EACH_EPOCH]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_train([*common, "+callbacks.crash._target_=runtime_helpers.CrashAt", "+callbacks.crash.step=6"],
                            tmp_path))
    first = _ckpt(tmp_path / "checkpoints" / "last.ckpt")
    assert first["global_step"] == 4
    assert [Path(s["best_model_path"]).name for k, s in first["callbacks"].items()
            if k.startswith("ModelCheckpoint")] == ["epoch000-epoch1.0000.ckpt"]
    train(compose_train([*common, "resume=auto"], tmp_path))
    _best_agrees(tmp_path, epochs=3)


def test_sigterm_on_an_epochs_last_step_then_resume_keeps_the_best_checkpoint_record(tmp_path):
    """SIGTERM during epoch 0's last step: the run validates, saves (after ModelCheckpoint), stops with exit 0;
    resume=auto trains epochs 1 and 2 and ends with one best file, the one result.json names."""
    common = [*TINY, "trainer.max_epochs=3", "logger=none", "hydra.run.dir=run", *BEST_EACH_EPOCH]
    run_cli([*common, "+callbacks.term._target_=runtime_helpers.SigtermAt", "+callbacks.term.step=3"], tmp_path)
    assert _ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 4
    run_cli([*common, "resume=auto"], tmp_path)
    _best_agrees(tmp_path / "run", epochs=3)


def test_last_checkpoint_refuses_to_run_before_a_model_checkpoint(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from crnn_lit.training.callbacks import LastCheckpoint

    last = LastCheckpoint(str(tmp_path), every_minutes=None, every_n_train_steps=None)
    trainer = types.SimpleNamespace(callbacks=[last, ModelCheckpoint(dirpath=tmp_path)])
    with pytest.raises(ValueError, match="LastCheckpoint must come after every ModelCheckpoint"):
        last.setup(trainer, None, "fit")


def test_resolve_checkpoint(compose_cfg, tmp_path):
    cfg = compose_cfg([*FAST, "resume=auto"])
    assert resolve_checkpoint(cfg) is None  # nothing to resume yet: start fresh
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    (ckpts / "last.ckpt").write_bytes(b"old")
    time.sleep(0.02)
    (ckpts / "last-v1.ckpt").write_bytes(b"new")
    (ckpts / ".last.ckpt.abc.tmp").write_bytes(b"half a checkpoint")
    assert resolve_checkpoint(cfg) == str(ckpts / "last-v1.ckpt")
    assert not (ckpts / ".last.ckpt.abc.tmp").exists()

    cfg.ckpt_path = str(ckpts / "last.ckpt")
    with pytest.raises(ConfigError, match="not both"):
        resolve_checkpoint(cfg)
    cfg.resume = None
    assert resolve_checkpoint(cfg) == str(ckpts / "last.ckpt")
    cfg.ckpt_path = str(ckpts / "missing.ckpt")
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_checkpoint(cfg)
    cfg.ckpt_path, cfg.resume = None, "yes"
    with pytest.raises(ConfigError, match="null or auto"):
        resolve_checkpoint(cfg)


def test_atomic_checkpoint_io_never_leaves_a_truncated_file(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, target)
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def dies_half_way(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise KeyboardInterrupt  # e.g. Ctrl-C or a SLURM signal in the middle of a write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, target)
    assert _ckpt(target)["global_step"] == 1
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_optimized_metric_mistakes_are_named(compose_cfg):
    with pytest.raises(ConfigError, match="optimized_mode=min"):
        train(compose_cfg([*FAST, "optimized_metric=val/cer"]))
    with pytest.raises(ConfigError, match="optimized_metric='val/accuracy' is not logged"):
        train(compose_cfg([*FAST, "optimized_metric=val/accuracy", "~callbacks.progress_bar"]))


def test_sigterm_mid_epoch_saves_the_current_step_and_resumes_from_it(tmp_path):
    """SIGTERM (to the main process) during step 6 (last.ckpt otherwise only every 10 minutes): the run saves
    step 6, exits 0, and resume=auto continues from there. (To the whole process group: tests/test_preemption.py.)"""
    common = [*TINY, "trainer.max_epochs=2", "logger=csv", "trainer.log_every_n_steps=4", "hydra.run.dir=run"]
    run_cli([*common, "+callbacks.term._target_=runtime_helpers.SigtermAt", "+callbacks.term.step=5"], tmp_path)
    assert _ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 6
    metrics = tmp_path / "run" / "csv" / "metrics.csv"

    def train_rows():
        with metrics.open() as f:
            return [int(row["step"]) for row in csv.DictReader(f) if row.get("train/loss")]
    assert train_rows() == [3, 5]  # the cadence's row (step 4), and the row of step 6, where the run stopped
    proc = run_cli([*common, "resume=auto"], tmp_path)
    assert "last.ckpt" in proc.stdout + proc.stderr
    assert _ckpt(tmp_path / "run" / "checkpoints" / "last.ckpt")["global_step"] == 8
    assert train_rows() == [3, 5, 7]  # no step twice



def test_sigterm_after_fit_exits_0_and_resume_auto_finishes_the_run(tmp_path):
    """SIGTERM while the best checkpoint is validated after training: exit 0 (was 143), no result.json yet;
    resume=auto then resumes at the end, validates and writes it."""
    common = [*TINY, "logger=none", "hydra.run.dir=run"]
    proc = run_cli([*common, "+callbacks.term._target_=runtime_helpers.SigtermInValidate"], tmp_path)  # asserts 0
    assert "SIGTERM after training" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "result.json").exists()
    run_cli([*common, "resume=auto"], tmp_path)
    assert json.loads((tmp_path / "run" / "result.json").read_text())["best_checkpoint"]


def test_lr_scaled_with_the_global_batch_and_printed(compose_cfg, capsys):
    """lr_scaling=linear from lr_reference_batch=8 at a global batch of 16 (one process): twice optimizer.lr, for the
    optimizer and one-cycle's peak alike; the line at start says how it was computed."""
    cfg = compose_cfg([*FAST, "lr_scaling=linear", "lr_reference_batch=8", "optimizer.lr=0.001"])
    train(cfg)
    assert "global batch 16 = 16 per device × 1 processes × 1 accumulated; learning rate 0.002 = 0.001 × (16 / 8)" \
        in capsys.readouterr().out
    state = _ckpt(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["optimizer_states"][0]
    assert state["param_groups"][0]["max_lr"] == pytest.approx(0.002)
    with pytest.raises(ConfigError, match="lr_scaling must be null, linear or sqrt"):
        train(compose_cfg([*FAST, "lr_scaling=cubic"]))


def test_step_based_validation_and_checkpoints_as_the_cluster_recipe_sets_them(compose_cfg):
    """experiment=cluster_mj_st counts in steps; its trainer settings on a CPU run of 4 steps per epoch: validation
    (and last.ckpt after it) every 3 optimizer steps across epoch boundaries, the run ending at max_steps."""
    recipe = compose_config(["experiment=cluster_mj_st", "trainer.devices=8", "data.root=/data"])
    assert (recipe.trainer.max_epochs, recipe.trainer.check_val_every_n_epoch, recipe.lr_scaling) == (None, None, "sqrt")
    assert recipe.trainer.val_check_interval < recipe.trainer.max_steps
    cfg = compose_cfg([*FAST, "trainer.max_epochs=null", "trainer.max_steps=6", "trainer.val_check_interval=3",
                       "trainer.check_val_every_n_epoch=null", "~callbacks.progress_bar"])
    train(cfg)
    with (Path(cfg.paths.output_dir) / "learning_curve.csv").open() as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == [3, 6]
    assert _ckpt(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")["global_step"] == 6
