"""What a multirun leaves behind: ``summary.csv`` in its sweep folder and, at the end, the best job.

``SweepSummary`` is a Hydra callback (conf/hydra/default.yaml, ``hydra.callbacks.sweep_summary``). After every job
it rewrites ``<sweep dir>/summary.csv`` from the job folders, so an interrupted sweep has one too; when the
multirun ends it prints the best job. One row per job: its folder, the overrides that differ between jobs (one
column each), the monitored metric, its best value and the best checkpoint — from the job's ``result.json``, which
``crnn_lit.train`` writes — and all of the job's overrides. A job without ``result.json`` (failed, still running,
or a task other than train) is listed with status ``no result``. Reading the folders rather than remembering jobs
in memory makes it work for any launcher and sweeper (Optuna, Slurm), whose jobs may run in other processes.
Imports nothing heavy: every entry point instantiates it at start-up.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

RESULT_FILE = "result.json"  # a training job's outcome (crnn_lit.train.write_result)


class SweepSummary(Callback):
    def __init__(self, filename: str = "summary.csv"):
        self.filename = filename

    def on_job_end(self, config: DictConfig, job_return: Any = None, **kwargs: Any) -> None:
        if config.hydra.mode == RunMode.MULTIRUN:
            summarize(Path(config.hydra.sweep.dir), self.filename)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / self.filename
        rows = summarize(path.parent, self.filename)
        best = best_row(rows)
        if best is not None:
            swept = " ".join(f"{k}={best[k]}" for k in swept_keys(rows)) or "(no swept values)"
            print(f"sweep: best of {len(rows)} jobs: job {best['job']} ({swept}): {best['metric']} = "
                  f"{best['best_value']:.4f}; checkpoint {best['best_checkpoint'] or '(none saved)'}")
        print(f"sweep summary: {path}")


def job_rows(sweep_dir: Path) -> list[dict]:
    """One dict per job folder (one holding ``.hydra/overrides.yaml``), in job order."""
    rows = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        job = overrides_file.parent.parent
        result_file = job / RESULT_FILE
        result = json.loads(result_file.read_text(encoding="utf-8")) if result_file.is_file() else {}
        rows.append({"job": job.name, "status": "done" if result else "no result",
                     "metric": result.get("optimized_metric", ""), "mode": result.get("optimized_mode", ""),
                     "best_value": result.get("best_value"), "best_checkpoint": result.get("best_checkpoint", ""),
                     "overrides": [str(o) for o in OmegaConf.load(overrides_file)]})
    return sorted(rows, key=lambda r: (not r["job"].isdigit(), int(r["job"]) if r["job"].isdigit() else r["job"]))


def overrides_dict(overrides: list[str]) -> dict[str, str]:
    """``["a.b=1", "~c"]`` → ``{"a.b": "1", "~c": ""}``."""
    return dict(o.split("=", 1) if "=" in o else (o, "") for o in overrides)


def swept_keys(rows: list[dict]) -> list[str]:
    """Override keys whose values differ between jobs (or that some jobs lack), in first-seen order."""
    given = [overrides_dict(row["overrides"]) for row in rows]
    keys = dict.fromkeys(key for job in given for key in job)
    return [key for key in keys if len({job.get(key) for job in given}) > 1]


def summarize(sweep_dir: Path, filename: str = "summary.csv") -> list[dict]:
    """Write ``sweep_dir/filename`` (atomically: jobs of a parallel launcher may finish together); return the
    rows, each also holding the swept overrides as its own keys."""
    rows = job_rows(sweep_dir)
    swept = swept_keys(rows)
    for row in rows:
        given = overrides_dict(row["overrides"])
        row.update({key: given.get(key, "") for key in swept})
    columns = ["job", *swept, "status", "metric", "best_value", "best_checkpoint", "overrides"]
    tmp = sweep_dir / f".{filename}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**row, "overrides": " ".join(row["overrides"])} for row in rows)
    os.replace(tmp, sweep_dir / filename)
    return rows


def best_row(rows: list[dict]) -> dict | None:
    """The job with the best value of the monitored metric (max or min, as the jobs' ``optimized_mode``); jobs
    monitoring another metric than the first finished one are not compared."""
    done = [r for r in rows if r["best_value"] is not None]
    if not done:
        return None
    metric, mode = done[0]["metric"], done[0]["mode"]
    same = [r for r in done if r["metric"] == metric]
    return (min if mode == "min" else max)(same, key=lambda r: r["best_value"])
