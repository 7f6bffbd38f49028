"""Figures for sizing GPU-cluster training, measured on this CPU machine, assumptions written down (issue 25).

    python bench/scale.py [--samples 1000000] [--out bench/results/scale.json]

Writes bench/results/scale.json:

* ``epoch_start_s_per_million`` {cold, warm, second_run}: the batch sampler's work before the first batch of an
  epoch (``next(iter(batch_sampler))`` of the training loader that ``data=lmdb`` builds), in CPU seconds per million
  samples, over a DTRB-layout LMDB without size records (``--samples`` records sharing a few renderer crops stored
  as JPEG, written with ``putmulti`` in key order: a million in seconds). cold = a first run (no size index: every
  image header is read, the index written); warm = a later epoch of the same run (median of 3); second_run = a new
  dataset over the same archive (the size index is read).
* ``size_index_build_evicted_s_per_million`` {readahead, no_readahead} × {wall, cpu}: the first run's size-index
  build over the same archive with its file evicted from the page cache first (``posix_fadvise(DONTNEED)``): a cold
  disk, as a new archive meets it; the build's sequential pass with the OS readahead (now) and without (before).
  Wall seconds: the read waits for the disk (this machine's virtual disk; network storage differs).
* ``images_per_cpu_s`` {lmdb, lmdb_strong, renderer}: usable images one DataLoader worker process (one thread)
  delivers per CPU-second of its own: decode + label policy + resize + collate over the real training crops
  (../shared/data/real_train converted to LMDB), without augmentation and with ``augment=strong``, and the default
  renderer (``data=synthetic``, glyph caches warm). CPU time, so the shared machine's load slows it less than wall
  time would.
* ``workers_needed_per_gpu_at_10k``: ceil(10,000 / images_per_cpu_s), loader workers one GPU needs at 10k images/s.
* ``default_workers_per_gpu``: what the shipped config gives one GPU on a SLURM node (``trainer=ddp
  trainer.devices=8 hydra/launcher=slurm data=mj_st``: one task per GPU, the launcher's ``cpus_per_task``).
* ``checkpoint_overhead_fraction_at_10k``: a full-state save of the paper net (``backbone=vgg rnn=bilstm``, AdamW
  state included; ``trainer.save_checkpoint`` as ``LastCheckpoint`` calls it, atomic and fsynced, timed inside
  ``python -m crnn_lit.train``) ÷ the default ``last.ckpt`` interval at 10k images/s per GPU.
* ``rank_balance``: ``useful_share_per_step`` {1, 8, 32}: real pixels ÷ processed pixels of one training epoch at that
  world size, where every rank of a step waits for the step's largest batch (the gradient all-reduce), over an
  epoch of ``--draws`` samples drawn from the resized widths of ../shared/data/real_train (batch 64, pool_batches
  50); ``dealt_round_robin`` the same for the sampler before issue 33 (one rank's batch order dealt in turn);
  ``real_train_once`` for one pass over the 6,725 crops themselves (at 32 ranks only 4 steps).
* ``input_shapes_per_epoch``: distinct (batch size, padded width) shapes of one rank's training batches over the
  same epoch, and the real share of their pixels, with the padded widths as they come (``pad_multiple_1``, CPU)
  and rounded to 8 px (``data.pad_multiple`` auto on a GPU, where ``cudnn.benchmark`` tunes each shape once).
* ``host_syncs_per_step``: device reads (``.item()``, ``.tolist()``, ``.cpu()``, ``float(tensor)``, …) and logs
  Lightning turns into one (a Python number, ``prog_bar=True``) inside ``training_step``, counted as calls in the
  checkpoint run below (``tests/runtime_helpers.CountHostSyncs``; the once-a-second checkpoint decision of
  ``LastCheckpoint`` runs after the step and is not counted).
* ``header``: CPU affinity, load before (``environment``, from bench/record.py, has the load after), the assumptions
  as sentences, and the details behind every figure.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import logging
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import cv2
import lightning as L
import lmdb
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.plugins.environments import SLURMEnvironment
from record import write

from crnn_lit.config import PROJECT_ROOT, compose_config, data_module
from crnn_lit.data.batching import EpochSampler, WidthBatchSampler, padded_width, step_useful_share
from crnn_lit.data.cli import convert
from crnn_lit.data.datamodule import GPU_PAD_MULTIPLE, auto_num_workers
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.data.sources.lmdb import LmdbDataset, close_env
from crnn_lit.model.backbone import WidthPlan
from crnn_lit.preprocess import Preprocess

BENCH = Path(__file__).resolve().parent
SHARED = PROJECT_ROOT.parent / "shared" / "data"
REAL_SETS = ("iiit5k", "svt", "ic15")
TARGET_IMAGES_PER_S = 10_000  # per GPU: the paper net in bf16 on a modern GPU does 8,000-12,000
output_length = WidthPlan().output_length  # the paper's plan: T = W // 4 + 1


# --- the archive -----------------------------------------------------------------------------------------------
def build_archive(path: Path, samples: int, distinct: int = 64, seed: int = 0) -> dict:
    """A DTRB-layout archive (``image-``/``label-`` records and ``num-samples``, no ``size-`` records) of
    ``samples`` records, each one of ``distinct`` renderer crops (heights 24-64 px) encoded as JPEG."""
    cfg = compose_config(["data=synthetic"])
    renderer = instantiate(cfg.data.train).renderer
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(distinct):
        sample = renderer.render(i)
        height = int(rng.choice([24, 32, 32, 32, 48, 64]))
        width = max(2, round(sample.image.shape[1] * height / sample.image.shape[0]))
        image = cv2.resize(sample.image, (width, height), interpolation=cv2.INTER_LINEAR)
        images.append(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        labels.append(sample.label.encode())
    pick = rng.integers(0, distinct, samples).tolist()
    path.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    env = lmdb.open(str(path), map_size=1 << 40, sync=False, meminit=False)
    with env.begin(write=True) as txn:
        cursor = txn.cursor()  # keys in order, appended: no B-tree search per record
        cursor.putmulti(((b"image-%09d" % (i + 1), images[k]) for i, k in enumerate(pick)), append=True)
        cursor.putmulti(((b"label-%09d" % (i + 1), labels[k]) for i, k in enumerate(pick)), append=True)
        txn.put(b"num-samples", str(samples).encode())
    env.sync()
    env.close()
    return {"samples": samples, "distinct_images": distinct, "mean_image_bytes": round(float(np.mean(
        [len(b) for b in images])), 1), "archive_bytes": (path / "data.mdb").stat().st_size,
        "build_s": round(time.perf_counter() - t0, 1)}


def lmdb_config(root: Path, overrides: list[str] = (), workers: int = 0):
    return compose_config(["data=lmdb", f"data.root={root}", f"data.num_workers={workers}", *overrides])


def datamodule(cfg, **kwargs):
    """The data module of a composed config, as ``python -m crnn_lit.train`` builds it."""
    return data_module(cfg.data, charset=instantiate(cfg.charset), output_length=output_length, **kwargs)


def first_batch_s(loader, epoch: int) -> dict:
    """CPU and wall seconds until the batch sampler hands out the first batch of ``epoch``."""
    batches = loader.batch_sampler
    wall, cpu = time.perf_counter(), time.process_time()
    batches.sampler.set_epoch(epoch)
    next(iter(batches))
    return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def epoch_start(root: Path, samples: int) -> tuple[dict, dict]:
    archive = root / "training"
    index = archive / "crnn_lit_sizes.npz"
    index.unlink(missing_ok=True)
    cfg = lmdb_config(root)
    cold = first_batch_s(datamodule(cfg).train_dataloader(), 0)
    close_env(archive)  # a second run: the archive reopened, new dataset objects
    loader = datamodule(cfg).train_dataloader()
    second = first_batch_s(loader, 0)
    warm = [first_batch_s(loader, epoch) for epoch in (1, 2, 3)]
    per_million = 1e6 / samples
    figures = {"cold": cold["cpu"], "warm": statistics.median(w["cpu"] for w in warm), "second_run": second["cpu"]}
    seconds = {"cold": cold, "second_run": second, "warm": warm}
    return {k: round(v * per_million, 4) for k, v in figures.items()}, {
        "seconds": json.loads(json.dumps(seconds), parse_float=lambda x: round(float(x), 4)),
        "size_index_bytes": index.stat().st_size if index.is_file() else None}


def evict(path: Path) -> None:
    """Drop ``path``'s pages from the page cache (``posix_fadvise(DONTNEED)``; clean pages only: the archive was
    synced when written), so the next read comes from the disk, as on a first run."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cold_index_build(archive: Path, samples: int) -> dict:
    """Wall and CPU seconds per million records of the size-index build of ``archive`` with its file out of the
    page cache, the build's pass reading ahead (now) and not (before issue 33)."""
    out = {}
    for readahead in (False, True):
        (archive / "crnn_lit_sizes.npz").unlink(missing_ok=True)
        close_env(archive)
        evict(archive / "data.mdb")
        wall, cpu = time.perf_counter(), time.process_time()
        with mock.patch.object(LmdbDataset, "BUILD_READAHEAD", readahead):
            LmdbDataset(archive).index_sizes()
        out["readahead" if readahead else "no_readahead"] = {
            "wall": round((time.perf_counter() - wall) * 1e6 / samples, 2),
            "cpu": round((time.process_time() - cpu) * 1e6 / samples, 2)}
    return out


def renderer_epoch_start(draws: int) -> dict:
    """The same for ``data=synthetic`` (``draws`` = samples_per_epoch): the renderer has no stored sizes, it lays
    out every drawn word to know its width, in the process that builds the batches."""
    cfg = compose_config(["data=synthetic", "data.num_workers=0", f"data.samples_per_epoch={draws}"])
    loader = datamodule(cfg).train_dataloader()
    first, second = first_batch_s(loader, 0), first_batch_s(loader, 1)  # the second with the font caches warm
    return {"draws": draws, "cpu_s_per_million_draws": {"first_epoch": round(first["cpu"] * 1e6 / draws, 1),
                                                        "second_epoch": round(second["cpu"] * 1e6 / draws, 1)}}


# --- ranks of one step ------------------------------------------------------------------------------------------
WORLD_SIZES = (1, 8, 32)


def real_train_widths() -> np.ndarray:
    """The resized widths (default input spec) of the real_train crops."""
    sizes = []
    for name in REAL_SETS:
        ds = FolderDataset(SHARED / "real_train" / name)
        sizes += [ds.size(i) for i in range(len(ds))]
    return Preprocess().resize.widths_for(np.array(sizes))


def rank_balance(widths: np.ndarray, draws: int, batch: int = 64) -> dict:
    epoch = np.random.default_rng(0).choice(widths, draws)

    def shares(w, grouped):
        return {str(n): round(step_useful_share(w, batch, n, grouped=grouped), 4) for n in WORLD_SIZES}
    return {"useful_share_per_step": shares(epoch, True), "dealt_round_robin": shares(epoch, False),
            "real_train_once": shares(widths, True), "draws": draws, "batch_size": batch}


def input_shapes(widths: np.ndarray, draws: int, batch: int = 64) -> dict:
    """Distinct (batch size, padded width) shapes of the training batches of one epoch (one rank), and the share of
    real pixels, with the padded width as it comes and rounded to ``GPU_PAD_MULTIPLE`` (data.pad_multiple auto on a
    GPU)."""
    epoch = np.random.default_rng(0).choice(widths, draws)
    indices, spans = WidthBatchSampler(EpochSampler(draws, shuffle=True), batch, epoch.__getitem__)._batches()
    result = {}
    for multiple in (1, GPU_PAD_MULTIPLE):
        shapes, used, padded = set(), 0, 0
        for start, end in spans.tolist():
            w = epoch[indices[start:end]]
            width = padded_width(int(w.max()), multiple)
            shapes.add((end - start, width))
            used, padded = used + int(w.sum()), padded + (end - start) * width
        result[f"pad_multiple_{multiple}"] = {"distinct_shapes": len(shapes), "useful_pixel_share": round(used / padded, 4)}
    return result


# --- loader throughput -----------------------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def images_per_cpu_s(data, images: int, rounds: int, warmup: int = 0) -> dict:
    """Usable images one DataLoader worker process delivers per CPU-second of its own (decode, label policy,
    resize, augmentation, collate, handing the batch over): median over ``rounds`` passes of ``images`` each,
    after ``warmup`` images (the renderer's glyph caches fill over thousands of renders, as in a long run)."""
    rates = []
    loader = data.train_dataloader()
    for epoch in range(rounds):
        loader.batch_sampler.sampler.set_epoch(epoch)
        skip = warmup if epoch == 0 else 0
        delivered, start, worker = 0, None, None
        for batch in loader:
            delivered += len(batch)
            if start is None and delivered > skip:  # past the first batch (the worker is up and ahead, as it stays)
                worker = loader._iterator._workers[0].pid
                delivered, start = 0, cpu_seconds(worker)
            elif start is not None and delivered >= images:
                break
        rates.append(delivered / (cpu_seconds(worker) - start))
    return {"median": round(statistics.median(rates), 1), "rounds": [round(r, 1) for r in rates]}


def convert_real_train(root: Path) -> int:
    written = 0
    for name in REAL_SETS:
        written += convert(FolderDataset(SHARED / "real_train" / name), root / "training" / name, f"bench:{name}")[
            "written"]
    return written


# --- defaults on a SLURM node ------------------------------------------------------------------------------------
def slurm_config():
    """One node of 8 GPUs (the launcher needs the counts), MJSynth + SynthText LMDBs."""
    return compose_config(["trainer=ddp", "trainer.devices=8", "hydra/launcher=slurm", "data=mj_st"],
                          return_hydra_config=True)


def default_workers_per_gpu(cfg) -> int:
    """Loader workers one GPU gets from the shipped config on a SLURM node: one task per GPU, each bound to the
    launcher's ``cpus_per_task`` CPUs (``num_workers: auto`` resolved as it is in such a task: ``SLURMEnvironment``,
    ``SLURM_CPUS_PER_TASK`` and the task's CPU affinity stand in for the job's)."""
    workers = cfg.data.num_workers
    if workers != "auto":
        return int(workers)
    cpus = int(cfg.hydra.launcher.cpus_per_task)
    task = SimpleNamespace(num_devices=int(cfg.hydra.launcher.tasks_per_node),
                           strategy=SimpleNamespace(cluster_environment=SLURMEnvironment()))
    with mock.patch.dict(os.environ, {"SLURM_CPUS_PER_TASK": str(cpus)}), \
            mock.patch.object(os, "sched_getaffinity", lambda pid: set(range(cpus)), create=True):
        return auto_num_workers(task)


def checkpoint_interval_s(cfg) -> tuple[float, str]:
    """Seconds between two ``last.ckpt`` saves under the shipped defaults, at 10k images/s per GPU: by time if
    ``callbacks.last_checkpoint`` has a time cadence (``every_minutes``), else by its step count."""
    last = cfg.callbacks.last_checkpoint
    if last.get("every_minutes"):
        return 60.0 * last.every_minutes, f"last.ckpt every {last.every_minutes} minutes (callbacks.last_checkpoint)"
    steps = last.get("every_n_train_steps")
    if not steps:
        raise ValueError(f"no last.ckpt cadence in callbacks.last_checkpoint: {dict(last)}")
    seconds = steps * cfg.data.batch_size / TARGET_IMAGES_PER_S
    return seconds, (f"last.ckpt every {steps} optimizer steps (callbacks.last_checkpoint.every_n_train_steps) of "
                     f"data.batch_size={cfg.data.batch_size} per GPU at {TARGET_IMAGES_PER_S} images/s = {seconds:g} s")


# --- checkpoint save time -------------------------------------------------------------------------------------------
class SaveTimer(L.Callback):
    """Times a full-state save (what ``LastCheckpoint`` writes) after every training step; appends JSON lines."""

    def __init__(self, path: str, out: str):
        self.path, self.out = path, Path(out)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        t0 = time.perf_counter()
        trainer.save_checkpoint(self.path, weights_only=False)
        seconds = time.perf_counter() - t0
        with self.out.open("a") as f:
            f.write(json.dumps({"s": seconds, "bytes": Path(self.path).stat().st_size}) + "\n")


def checkpoint_save_s(tmp: Path, steps: int) -> tuple[dict, dict]:
    """Save times of the paper net's full state, and the host syncs counted inside its training steps in the same
    run (``tests/runtime_helpers.CountHostSyncs``)."""
    run = tmp / "ckpt_run"
    timings, syncs = tmp / "saves.jsonl", tmp / "syncs.json"
    command = [sys.executable, "-m", "crnn_lit.train", f"hydra.run.dir={run}", "backbone=vgg", "rnn=bilstm",
               f"data.samples_per_epoch={16 * steps}", "data.batch_size=16", "data.eval_batch_size=32",
               "data.num_workers=0", "data.val.length=32", "logger=none", "trainer.max_epochs=1",
               "trainer.num_sanity_val_steps=0", "~callbacks.progress_bar",
               "+callbacks.save_timer._target_=scale.SaveTimer", f"+callbacks.save_timer.path={run}/timed.ckpt",
               f"+callbacks.save_timer.out={timings}", "+callbacks.syncs._target_=runtime_helpers.CountHostSyncs",
               f"+callbacks.syncs.out={syncs}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BENCH), str(PROJECT_ROOT / "src"), str(PROJECT_ROOT / "tests"),
                                                        os.environ.get("PYTHONPATH", "")]), WANDB_MODE="disabled")
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=900)
    saves = [json.loads(line) for line in timings.read_text().splitlines()]
    return {"median_s": statistics.median(s["s"] for s in saves), "saves_s": [round(s["s"], 3) for s in saves],
            "bytes": saves[-1]["bytes"]}, json.loads(syncs.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_000_000, help="records of the epoch-start archive (>= 1 M)")
    ap.add_argument("--images", type=int, default=3000, help="images per throughput pass (half with augment=strong)")
    ap.add_argument("--rounds", type=int, default=3, help="throughput passes per loader (median)")
    ap.add_argument("--renderer-warmup", type=int, default=8000, help="renders before the renderer is timed")
    ap.add_argument("--ckpt-steps", type=int, default=4, help="training steps of the paper net (one save each)")
    ap.add_argument("--draws", type=int, default=1_000_000, help="epoch of the rank-balance figure")
    ap.add_argument("--out", default=str(PROJECT_ROOT / "bench" / "results" / "scale.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not all((SHARED / "real_train" / s / "labels.tsv").is_file() for s in REAL_SETS):
        sys.exit(f"needs {SHARED}/real_train/{{{','.join(REAL_SETS)}}} (labels.tsv + images)")
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    slurm = slurm_config()  # first: a config this script cannot read yet stops it before the measurements
    default_workers = default_workers_per_gpu(slurm)
    interval_s, interval_how = checkpoint_interval_s(slurm)
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    details: dict = {}
    widths = real_train_widths()
    balance, shapes = rank_balance(widths, args.draws), input_shapes(widths, args.draws)
    print(f"rank balance: {balance}; input shapes: {shapes}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="crnn_lit_scale_") as tmp:
        tmp = Path(tmp)
        big = tmp / "big"
        details["archive"] = build_archive(big / "training", args.samples)
        build_archive(big / "validation", 64)
        print(f"archive: {details['archive']}", file=sys.stderr)
        epoch, details["epoch_start"] = epoch_start(big, args.samples)
        print(f"epoch start (s per million): {epoch}", file=sys.stderr)
        cold_index = cold_index_build((big / "training").resolve(), args.samples)
        print(f"size index, page cache evicted (s per million): {cold_index}", file=sys.stderr)
        details["renderer_epoch_start"] = renderer_epoch_start(20_000)
        for part in ("training", "validation"):
            close_env(big / part)
        shutil.rmtree(big)  # its disk space, before the next part

        real = tmp / "real"
        details["real_train_lmdb_samples"] = convert_real_train(real)
        val = [f"data.val.root={real / 'training'}"]
        throughput = {
            "lmdb": images_per_cpu_s(datamodule(lmdb_config(real, val, workers=1)), args.images, args.rounds),
            "lmdb_strong": images_per_cpu_s(datamodule(lmdb_config(real, [*val, "augment=strong"], workers=1)),
                                            args.images // 2, args.rounds),
            "renderer": images_per_cpu_s(datamodule(compose_config(["data=synthetic", "data.num_workers=1"]),
                                                    samples_per_epoch=args.renderer_warmup + args.images),
                                         args.images // 2, args.rounds, warmup=args.renderer_warmup),
        }
        print(f"images per CPU-second: {throughput}", file=sys.stderr)
        details["images_per_cpu_s_rounds"] = {k: v["rounds"] for k, v in throughput.items()}

        ckpt, syncs = checkpoint_save_s(tmp, args.ckpt_steps)
        details["checkpoint_save"], details["host_syncs"] = ckpt, syncs
        print(f"checkpoint: {ckpt}", file=sys.stderr)

    rates = {k: v["median"] for k, v in throughput.items()}
    result = {
        "epoch_start_s_per_million": epoch,
        "size_index_build_evicted_s_per_million": cold_index,
        "images_per_cpu_s": rates,
        "workers_needed_per_gpu_at_10k": {k: math.ceil(TARGET_IMAGES_PER_S / v) for k, v in rates.items()},
        "default_workers_per_gpu": default_workers,
        "checkpoint_overhead_fraction_at_10k": round(ckpt["median_s"] / interval_s, 5),
        "rank_balance": balance,
        "input_shapes_per_epoch": shapes,
        "host_syncs_per_step": round(syncs["syncs"] / max(syncs["steps"], 1), 3),
        "header": {  # besides record.py's ``environment`` (machine, versions, torch threads, load at the end)
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "opencv_threads": cv2.getNumThreads(),
            "load_average_before_1_5_15min": load_before,
            "run_s": round(time.perf_counter() - started, 1),
            "assumptions": [
                (f"epoch start: a DTRB-layout LMDB of {args.samples:,} records without size records, each record one of "
                f"{details['archive']['distinct_images']} renderer crops (heights 24-64 px) stored as JPEG (quality "
                "90); written in key order with lmdb putmulti(append=True); the archive file is in the page cache "
                "(cold = no size index yet, not a cold disk)"),
                ("epoch start: the training loader of data=lmdb (batch 64, pool_batches 50, one rank), timed from "
                "set_epoch to the first batch it hands out (the sizes, index read or written, widths, shuffle, "
                "pools, batches); second_run = new dataset objects over the reopened archive in the same process; "
                "the figures are CPU seconds of the process (what an idle machine takes: the work is one thread, the "
                "archive in the page cache); wall seconds on this shared machine are in details.epoch_start"),
                ("images_per_cpu_s: the CPU time of the one DataLoader worker process (data.num_workers=1, one "
                "thread: OMP, torch and OpenCV at 1) over the usable images it delivers (samples the label policy "
                "rejects are read but not counted); lmdb = ../shared/data/real_train (IIIT5K, SVT, IC15 training "
                "crops, median ≈ 70×33 px, MJSynth-like sizes) converted to LMDB, lowercase charset; renderer = "
                f"data=synthetic's default renderer, timed after {args.renderer_warmup} renders in the worker (its "
                "glyph caches warm, as in a long run)"),
                (f"workers: {TARGET_IMAGES_PER_S} images/s per GPU (the paper net in bf16 on a modern GPU does "
                "8,000-12,000); the training process itself needs a CPU besides the workers"),
                (f"default_workers_per_gpu: composed from trainer=ddp trainer.devices=8 hydra/launcher=slurm "
                f"data=mj_st; one SLURM task per GPU with hydra.launcher.cpus_per_task="
                f"{slurm.hydra.launcher.cpus_per_task}, data.num_workers={slurm.data.num_workers} resolved by "
                "crnn_lit.data.datamodule.auto_num_workers as inside such a task"),
                (f"checkpoint: {interval_how}; save = trainer.save_checkpoint(weights_only=False) of the paper net "
                f"({ckpt['bytes'] / 1e6:.0f} MB: weights, AdamW state, loops, callbacks) through AtomicCheckpointIO "
                "(fsync) to the local disk, one process (no barrier wait); network storage is slower"),
            ],
            "details": details,
        },
    }
    write(args.out, result, show={k: v for k, v in result.items() if k != "header"})


if __name__ == "__main__":
    main()
