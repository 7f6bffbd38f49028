"""Fault tests (slow): kill -9 training mid-epoch, or SIGTERM its whole process group (loader workers included),
then resume=auto; and kill checkpoint writers mid-write.

The full run with the figures in the docs (Training on a cluster): `python bench/fault_resume.py` (bench/results/fault_resume.json).
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fault_resume(args: list[str], tmp_path: Path) -> dict:
    out = tmp_path / "fault_resume.json"
    # the benchmark run as a user runs it (bench/ is a folder of scripts, not a package tests import)
    subprocess.run([sys.executable, str(ROOT / "bench" / "fault_resume.py"), *args, "--workdir", str(tmp_path / "work"),
                    "--out", str(out)], cwd=ROOT, check=True, timeout=1700,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return json.loads(out.read_text())


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_mid_epoch_then_resume_auto(tmp_path):
    result = _fault_resume(["--kills", "2", "--every", "4", "--samples-per-epoch", "320", "--save-kills", "6"], tmp_path)
    assert result["all_checkpoints_intact"]
    for kill in result["kills"]:
        assert 0 <= kill["steps_lost"] < 4 + 1 and kill["step_in_epoch_at_kill"] != 0
    assert result["final_run"]["final_step"] == result["settings"]["total_steps"]
    assert result["weights_equal_to_uninterrupted_run"]
    atomic = next(r for r in result["save_stress"] if r["io"] == "atomic")
    assert atomic["torn_checkpoints"] == 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigterm_to_the_process_group_then_resume_auto_is_exact(tmp_path):
    """As `timeout -s TERM` and SLURM send it: the loader workers ignore it, the trainer saves the step it reached
    and exits 0 with one log line; resume=auto ends with the uninterrupted run's weights, bit for bit."""
    result = _fault_resume(["--kills", "2", "--signal", "TERM", "--num-workers", "1", "--every", "4",
                            "--samples-per-epoch", "320", "--save-kills", "0"], tmp_path)
    assert len(result["kills"]) == 2 and result["all_checkpoints_intact"]
    for stop in result["kills"]:
        assert stop["exit_status"] == 0 and stop["steps_lost"] == 0 and stop["partial_temp_files_left"] == []
    log = (tmp_path / "work" / "killed.log").read_text()
    assert "killed by signal" not in log
    lines = re.findall(r"preempted by SIGTERM at step (\d+): saved \S+last.ckpt; continue with resume=auto", log)
    assert [int(n) for n in lines] == [stop["checkpoint_step"] for stop in result["kills"]]
    assert result["final_run"]["final_step"] == result["settings"]["total_steps"]
    assert result["weights_equal_to_uninterrupted_run"]
