"""Fault test (slow): kill -9 training mid-epoch, resume=auto, and kill checkpoint writers mid-write.

The full run with the figures in the docs (Training on a cluster): `python bench/fault_resume.py` (bench/results/fault_resume.json).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_mid_epoch_then_resume_auto(tmp_path):
    out = tmp_path / "fault_resume.json"
    # the benchmark run as a user runs it (bench/ is a folder of scripts, not a package tests import)
    subprocess.run([sys.executable, str(ROOT / "bench" / "fault_resume.py"), "--kills", "2", "--every", "4",
                    "--samples-per-epoch", "320", "--save-kills", "6", "--workdir", str(tmp_path / "work"),
                    "--out", str(out)], cwd=ROOT, check=True, timeout=1700,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    result = json.loads(out.read_text())
    assert result["all_checkpoints_intact"]
    for kill in result["kills"]:
        assert 0 <= kill["steps_lost"] < 4 + 1 and kill["step_in_epoch_at_kill"] != 0
    assert result["final_run"]["final_step"] == result["settings"]["total_steps"]
    assert result["weights_equal_to_uninterrupted_run"]
    atomic = next(r for r in result["save_stress"] if r["io"] == "atomic")
    assert atomic["torn_checkpoints"] == 0
