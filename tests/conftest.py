from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from crnn_lit.config import SHARED_DATA_ENV, compose_config, register_resolvers
from crnn_lit.preprocess import Preprocess

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
# the shared data location is explicit (conf/paths: $CRNN_LIT_DATA); tests, and the CLIs they start, read it there
os.environ.setdefault(SHARED_DATA_ENV, str(SHARED_DATA))

register_resolvers()
PREPROCESS = Preprocess.from_conf()  # conf/preprocess/default.yaml: height 32, grayscale, widths 16–400, bucketed


def compose_train(overrides: list[str], output_dir: Path) -> DictConfig:
    """The train config as `python -m crnn_lit.train <overrides>` would see it, writing into ``output_dir``."""
    cfg = _compose_app("train", overrides, output_dir)
    if "length" in cfg.data.val:  # a rendered validation set: keep it small
        cfg.data.val.length = 32
    return cfg


# small, fast settings for running the real pipeline in tests
FAST = [
    "data.samples_per_epoch=64", "data.batch_size=16", "data.eval_batch_size=32", "data.num_workers=0",
    "logger=none", "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
]


_SIGNALS = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGUSR2")]


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """A test that leaves a Python signal handler behind (e.g. LastCheckpoint's, installed by on_train_start) makes
    later forked processes ignore SIGTERM: a multiprocessing.Pool's terminate() then waits forever. Restore, and
    fail the test that did it."""
    before = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    yield
    left = [sig.name for sig in _SIGNALS if signal.getsignal(sig) != before[sig]]
    for sig in _SIGNALS:
        signal.signal(sig, before[sig])
    assert not left, f"the test left signal handlers installed: {left}"


@pytest.fixture
def compose_cfg(tmp_path):
    return lambda overrides: compose_train(overrides, tmp_path)


def _compose_app(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    cfg = compose_config(overrides, config_name=name, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


@pytest.fixture
def compose_predict(tmp_path):
    return lambda overrides: _compose_app("predict", overrides, tmp_path)


@pytest.fixture
def compose_evaluate(tmp_path):
    return lambda overrides: _compose_app("evaluate", overrides, tmp_path)


TINY_MODEL = {
    "backbone": {"_target_": "crnn_lit.model.backbone.VGG", "channels": [8, 16, 32, 32, 64, 64, 64],
                 "batch_norm": [1, 2, 3, 4, 5, 6, 7]},
    "rnn": {"_target_": "crnn_lit.model.rnn.SequenceModel", "hidden_size": 16, "num_layers": 2},
    **PREPROCESS.record(),
}


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory) -> Path:
    """An untrained small CRNN (lowercase charset) saved as a weights-only checkpoint, BN statistics randomized."""
    import torch

    from crnn_lit.charset import Charset
    from crnn_lit.checkpoint import save_weights
    from crnn_lit.model import build_model

    torch.manual_seed(0)
    charset = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
    model = build_model(TINY_MODEL["backbone"], TINY_MODEL["rnn"], charset.num_classes, 1)
    for m in model.modules():  # non-trivial BN statistics, so eval-mode BN is really exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return save_weights(tmp_path_factory.mktemp("ckpt") / "model.pt", model.eval(), charset, TINY_MODEL)


# TINY_MODEL behind a small TPS stage (crnn_lit.model.transform), the input's own size kept
TINY_TPS = {"_target_": "crnn_lit.model.transform.TPS", "fiducials": 20, "rectified_size": None,
            "channels": [8, 16, 16, 32], "hidden": 16, "align_corners": False}


@pytest.fixture(scope="session")
def tiny_tps_ckpt(tmp_path_factory) -> Path:
    """``tiny_ckpt``'s network behind a TPS stage whose warp is far from the identity (random last layer); without
    the warp its logits would differ by ~1e-2."""
    import torch

    from crnn_lit.charset import Charset
    from crnn_lit.checkpoint import save_weights
    from crnn_lit.model import build_model

    torch.manual_seed(0)
    charset = Charset.from_file(ROOT / "data/charsets/lowercase36.txt")
    config = {**TINY_MODEL, "transform": TINY_TPS}
    model = build_model(config["backbone"], config["rnn"], charset.num_classes, 1, config["transform"])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():
        model.transform.regressor[2].weight.normal_(std=0.1)
        model.head.weight.mul_(100)  # a random net's logits barely follow its input: make 1e-4 parity mean something
    return save_weights(tmp_path_factory.mktemp("ckpt") / "tps.pt", model.eval(), charset, config)
