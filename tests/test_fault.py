"""Fault test (slow): kill -9 training mid-epoch, resume=auto, and kill checkpoint writers mid-write.

The full run with the figures in the README: `python bench/fault_resume.py` (bench/results/fault_resume.json).
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_auto(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import fault_resume
    finally:
        sys.path.remove(str(ROOT / "bench"))
    result = fault_resume.main(["--kills", "2", "--every", "4", "--samples-per-epoch", "320", "--save-kills", "6",
                                "--workdir", str(tmp_path / "work"), "--out", str(tmp_path / "fault_resume.json")])
    assert result["all_checkpoints_intact"]
    for kill in result["kills"]:
        assert 0 <= kill["steps_lost"] < 4 + 1 and kill["step_in_epoch_at_kill"] != 0
    assert result["final_run"]["final_step"] == result["settings"]["total_steps"]
    assert result["weights_equal_to_uninterrupted_run"]
    atomic = next(r for r in result["save_stress"] if r["io"] == "atomic")
    assert atomic["torn_checkpoints"] == 0
