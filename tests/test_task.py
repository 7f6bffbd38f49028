"""The entry points' shared frame (crnn_lit.task): exit status 2 with one line on stderr for a configuration
that cannot run, the W&B run closed after every job, the task's return value passed on."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from hydra.core.global_hydra import GlobalHydra

from crnn_lit.config import PROJECT_ROOT, ConfigError, compose_config
from crnn_lit.task import task


class FakeWandb(types.ModuleType):
    def __init__(self):
        super().__init__("wandb")
        self.run, self.finished = object(), 0

    def finish(self):
        self.finished += 1
        self.run = None


@pytest.fixture
def hydra_app(monkeypatch, tmp_path):
    """Runs ``task("export")`` apps in this process, with a fake ``wandb`` whose run the frame must close."""
    wandb = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", wandb)
    monkeypatch.setattr(sys, "argv", ["app", f"hydra.run.dir={tmp_path}"])
    GlobalHydra.instance().clear()
    yield wandb
    GlobalHydra.instance().clear()


def test_a_config_error_is_one_line_on_stderr_exit_2_and_wandb_closed(hydra_app, capsys):
    @task("export")
    def main(cfg):
        raise ConfigError(f"format must be one of ['onnx'], got {cfg.format!r}")

    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "crnn_lit.export: error: format must be one of ['onnx'], got 'onnx'\n"
    assert hydra_app.finished == 1


def test_a_task_returns_its_value_and_closes_wandb(hydra_app):
    @task("export")
    def main(cfg):
        return cfg.opset * 2

    # what Hydra's job runner gets (an Optuna sweep reads the metric there; a single run discards it)
    assert main.__wrapped__(compose_config(config_name="export")) == 34  # conf/export.yaml: opset 17
    assert hydra_app.finished == 1


def test_other_errors_keep_their_traceback_and_still_close_wandb(hydra_app, capsys):
    @task("export")
    def main(cfg):
        raise KeyError("a bug, not a configuration")

    with pytest.raises(SystemExit) as exit_info:  # Hydra prints the traceback and exits with 1
        main()
    assert exit_info.value.code == 1
    assert "KeyError: 'a bug, not a configuration'" in capsys.readouterr().err
    assert hydra_app.finished == 1


def test_entry_point_exit_status_and_message(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "crnn_lit.export", "format=bogus", f"hydra.run.dir={tmp_path}"],
                          check=False, capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == ("crnn_lit.export: error: format must be one of "
                                                    "['onnx', 'torchscript'], got 'bogus'")


@pytest.mark.parametrize(("override", "line"), [
    ("opst=3", ("crnn_lit.export: error: opst: no such config key in export; did you mean opset? (a new key needs "
               "+opst=…)")),
    ("paths.output_dri=x", ("crnn_lit.export: error: paths.output_dri: no such config key in export; did you mean "
                           "paths.output_dir or")),
    ("hydra/launcher=slrum", "crnn_lit.export: error: hydra/launcher=slrum: no such option"),
    ("format=[onnx", "crnn_lit.export: error: cannot read the command line:"),
])
def test_a_hydra_override_error_is_one_line_with_the_closest_keys_exit_2(hydra_app, capsys, monkeypatch, tmp_path,
                                                                        override, line):
    @task("export")
    def main(cfg):
        raise AssertionError("never run")

    monkeypatch.setattr(sys, "argv", ["app", override, f"hydra.run.dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1 and err.startswith(line), err
    assert "HYDRA_FULL_ERROR" not in os.environ
