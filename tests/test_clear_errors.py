"""No silent failures (issue 28): every wrong input ends in one clear line naming what to do (exit 2 from the CLIs),
and a run that is legitimate but changes what a figure means says so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import InstantiationException
from omegaconf import open_dict
from PIL import Image

import crnn_lit.config as config_module
import crnn_lit.evaluate as evaluate_module
import crnn_lit.paths as assets_module
import crnn_lit.reading.recognizer as recognizer_module
from conftest import ROOT, SHARED_DATA
from crnn_lit import Recognizer
from crnn_lit.checkpoint import CheckpointError, load_model
from crnn_lit.config import ConfigError, MissingFile, check_values, compose_config, find_asset
from crnn_lit.task import user_error
from test_evaluate import BENCH, fake_recognize

ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"crnn_lit.{module}", *args, f"hydra.run.dir={cwd / 'run'}"],
                          check=False, capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


# --- config values are checked where they enter --------------------------------------------------------------
@pytest.mark.parametrize(("name", "override", "message"), [
    ("train", "data.batch_size=abc", "data.batch_size='abc': expected an integer >= 1"),
    ("train", "optimizer.lr=abc", "optimizer.lr='abc': expected a number > 0"),
    ("train", "optimizer.lr=0", "optimizer.lr=0: out of range, expected a number > 0"),
    ("train", "data.num_workers=-1", "data.num_workers=-1: out of range, expected an integer >= 0 (or auto)"),
    ("train", "rnn.hidden_size=1.5", "rnn.hidden_size=1.5: expected an integer >= 1"),
    ("train", "preprocess.width_multiple=0", "preprocess.width_multiple=0: out of range, expected an integer >= 1"),
    # a value interpolated from the key a user sets is named by that key
    ("train", "data=real_finetune data.mix.holdout=1.5", "data.mix.holdout=1.5: out of range, expected a number >= 0 and <= 1"),
    ("train", "trainer.max_epochs=-2", "trainer.max_epochs=-2: out of range, expected an integer >= -1 (or null)"),
    ("predict", "batch_size=0", "batch_size=0: out of range, expected an integer >= 1"),
    ("evaluate", "turn_tall=0.5", "turn_tall=0.5: out of range, expected a number >= 1 (or null)"),
    ("evaluate", "decoder=beam decoder.prune_mass=0", "decoder.prune_mass=0: out of range, expected a number > 0 and <= 1"),
    ("evaluate", "lexicon_decoder.open_ratio=-1", "lexicon_decoder.open_ratio=-1: out of range, expected a number >= 0"),
    ("train", "optimizer.lr=nan", "optimizer.lr=nan: expected a number > 0"),  # NaN is in no range
    ("evaluate", "decoder=beam", None),  # a valid one
])
def test_a_knob_of_the_wrong_type_or_range_is_one_line(name, override, message):
    overrides = override.split() + (["inputs=x.png"] if name == "predict" else [])
    cfg = compose_config(overrides, config_name=name)
    if message is None:
        check_values(cfg)
        return
    with pytest.raises(ConfigError) as err:
        check_values(cfg)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_a_knob_is_declared_once_by_its_owner_and_checked_from_the_config_before_it_is_built():
    """The composed config is checked against the KNOBS of each node's target: the same declaration the object
    checks when built from Python, so the two cannot disagree."""
    from crnn_lit.charset import Charset
    from crnn_lit.data.datamodule import TextDataModule
    from crnn_lit.transcription import BeamDecoder

    keys = {key for key, _, _ in config_module._knobbed_values(compose_config(["data=real_finetune"]))}
    assert {f"data.{k}" for k in TextDataModule.KNOBS} <= keys and "data.mix.holdout" in keys
    assert {"rnn.hidden_size", "preprocess.min_width", "optimizer.lr"} <= keys
    evaluate = {key for key, _, _ in config_module._knobbed_values(compose_config(["decoder=beam"], "evaluate"))}
    assert {f"decoder.{k}" for k in BeamDecoder.KNOBS if k not in ("lm_weight", "length_bonus")} <= evaluate
    assert {"batch_size", "chunk_size", "turn_tall", "threads", "error_sheet"} <= evaluate
    charset = Charset("abc")
    with pytest.raises(ConfigError, match=r"^beam_width=0: out of range, expected an integer >= 1$"):
        BeamDecoder(charset, beam_width=0)
    assert BeamDecoder(charset, beam_width=np.int64(3)).beam_width == 3  # numpy's integers are integers
    with pytest.raises(ConfigError, match=r"^lm_weight=-1: out of range, expected a number >= 0$"):
        BeamDecoder(charset, lm_weight=-1)


def test_a_relation_between_values_is_checked_by_its_owner_before_any_work(tmp_path):
    proc = cli("train", "preprocess.min_width=500", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [("crnn_lit.train: error: preprocess.min_width=500 is above "
                                                 "preprocess.max_width=400: the minimum cannot exceed the maximum")]
    assert not (tmp_path / "run" / "checkpoints").exists() and "Epoch" not in proc.stdout


def test_every_shipped_config_passes_the_schema():
    """The schema describes the shipped configs: each entry point and every option of the groups that set its knobs
    (tests/test_train.py runs every other option through train(), which checks them too, but with FAST's values)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_module.CONFIG_DIR), version_base="1.3"):
        for name in ("train", "evaluate", "predict", "export"):
            check_values(compose(name, overrides=["inputs=x.png"] if name == "predict" else []))
        for group in ("data", "decoder", "experiment", "trainer"):
            app = "predict" if group == "decoder" else "train"
            for option in sorted((config_module.CONFIG_DIR / group).glob("*.yaml")):
                overrides = [f"{group}={option.stem}"] + (["inputs=x.png"] if app == "predict" else [])
                check_values(compose(app, overrides=overrides))


def test_a_typo_on_the_command_line_fails_in_one_line_before_any_work(tmp_path):
    proc = cli("train", "data.batch_size=abc", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["crnn_lit.train: error: data.batch_size='abc': expected an integer >= 1"]
    assert not (tmp_path / "run" / "checkpoints").exists() and "Epoch" not in proc.stdout


def test_an_error_raised_inside_a_config_node_is_still_one_line(tmp_path):
    """Hydra wraps what a config node's target raises (InstantiationException); the frame finds the user error in it."""
    try:
        try:
            raise MissingFile("lexicon file not found: nope.txt")
        except MissingFile as inner:
            raise InstantiationException("Error in call to target 'load_lexicon'") from inner
    except InstantiationException as wrapped:
        assert str(user_error(wrapped)) == "lexicon file not found: nope.txt"
    assert user_error(InstantiationException("a bug")) is None
    word = tmp_path / "w.png"
    Image.new("L", (80, 32), 255).save(word)
    proc = cli("predict", f"inputs={word}", "decoder=lexicon", "lexicon=file", "lexicon.path=nope.txt", cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("crnn_lit.predict: error: lexicon file not found: nope.txt (not a file, nor a shipped one;")


# --- untrusted or broken model files ------------------------------------------------------------------------------
class _RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):  # what a malicious checkpoint does: unpickling calls a function of its choice
        return (Path.touch, (self.marker,))


def test_untrusted_checkpoints_are_refused_in_our_words(tmp_path):
    import torch

    marker = tmp_path / "code_ran"
    evil, noise = tmp_path / "evil.pt", tmp_path / "noise.pt"
    torch.save({"state_dict": {}, "x": _RunsCode(marker)}, evil)
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    messages = []
    for path in (evil, noise):
        with pytest.raises(CheckpointError) as err:
            load_model(path)
        messages.append(str(err.value))
        assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's text is not chained
    assert not marker.exists()
    assert messages[0].startswith(f"refusing {evil}: loading it would run code it names (getattr); crnn_lit reads "
                                  "only weights-only checkpoints")
    assert messages[1] == f"{noise} is not a readable checkpoint (corrupt, or not a torch file; UnpicklingError)"
    assert all("weights_only" not in m and "\n" not in m for m in messages)
    with pytest.raises(CheckpointError, match="refusing"):
        Recognizer.from_checkpoint(evil)


def test_broken_onnx_models_are_one_clear_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(2048))
    with pytest.raises(CheckpointError) as err:
        Recognizer.from_checkpoint(garbage)
    assert str(err.value).startswith(f"{garbage} is not a usable ONNX model: [ONNXRuntimeError]")
    assert "\n" not in str(err.value)

    valid = tmp_path / "valid.onnx"  # loads in onnxruntime, but its sidecar is missing
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("images", "logits")]
    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["logits"])], "g", io[:1], io[1:])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), valid)
    with pytest.raises(CheckpointError) as err:
        Recognizer.from_checkpoint(valid)
    assert str(err.value).startswith(f"{valid} has no sidecar: expected {valid}.json beside it")
    (tmp_path / "valid.onnx.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"valid\.onnx\.json is not a crnn_lit export sidecar \(KeyError"):
        Recognizer.from_checkpoint(valid)


# --- shipped assets by name, the shared data folder explicit ---------------------------------------------------
def test_shipped_assets_are_found_by_name_from_any_folder(tmp_path, monkeypatch):
    from crnn_lit.transcription.lexicon import Lexicon
    from crnn_lit.transcription.lm import CharNgramLM

    monkeypatch.chdir(tmp_path)  # not the checkout: data/lm/… is no relative path from here
    lm = config_module.ASSETS_DIR / "lm" / "english_char6.json.gz"
    assert find_asset("data/lm/english_char6.json.gz", "lm", "language model file") == lm  # the README's spelling
    assert find_asset("english_char6", "lm", "language model file", (".json.gz",)) == lm
    assert CharNgramLM.load("english_char6").order == 6
    assert len(Lexicon.from_file("english")) > 70_000
    with pytest.raises(FileNotFoundError) as err:  # MissingFile: a FileNotFoundError and a ConfigError
        CharNgramLM.load("data/lm/english_char7.json.gz")
    assert isinstance(err.value, ConfigError)
    assert str(err.value).endswith("shipped in " + str(lm.parent) + ": english_char6.json.gz, english_receipts_char6.json.gz)")
    own = tmp_path / "english_char6.json.gz"  # a file of that name in the working folder wins
    own.write_bytes(lm.read_bytes())
    assert find_asset("english_char6.json.gz", "lm", "language model file") == Path("english_char6.json.gz")
    cfg = compose_config(["decoder=beam_lm", "decoder.lm=english_char6", "inputs=x.png"], config_name="predict")
    from hydra.utils import instantiate

    from crnn_lit.charset import Charset

    assert instantiate(cfg.decoder)(Charset.from_file("lowercase36")).fusion.lm.order == 6


def test_the_shared_data_folder_is_explicit(monkeypatch):
    monkeypatch.setenv("CRNN_LIT_DATA", "/data/mine")
    cfg = compose_config([], config_name="evaluate")
    assert (cfg.paths.shared_data_dir, cfg.benchmark_root) == ("/data/mine", "/data/mine/benchmarks")
    monkeypatch.delenv("CRNN_LIT_DATA")
    assert compose_config([], config_name="evaluate").paths.shared_data_dir == str(SHARED_DATA)  # beside the checkout
    monkeypatch.setattr(assets_module, "INSTALLED", True)  # installed: never guessed from the working folder
    cfg = compose_config(["lexicon=file", "inputs=x.png"], config_name="predict")
    assert cfg.lexicon.path == "<CRNN_LIT_DATA not set>/lexicons/mjsynth90k_generic_vocabulary.txt"


# --- evaluate ------------------------------------------------------------------------------------------------------
@pytest.fixture
def svt_root(tmp_path):
    """A four-image SVT with its per-image lexicon and a 90k-style word list (BENCH of test_evaluate)."""
    root = tmp_path / "benchmarks" / "svt"
    (root / "img").mkdir(parents=True)
    for key in BENCH:
        Image.fromarray(np.full((32, 80), 200, np.uint8)).save(root / key)
    (root / "labels.tsv").write_text("".join(f"{k}\t{v[0]}\n" for k, v in BENCH.items()))
    (root / "lexicon50.tsv").write_text("".join(f"{k}\t{','.join(v[2])}\n" for k, v in BENCH.items()))
    (tmp_path / "words.txt").write_text("hello\nworld\nabc\nx1\n")
    return root


def _evaluate(compose_evaluate, monkeypatch, svt_root, *overrides):
    monkeypatch.setattr(recognizer_module, "recognize", fake_recognize)
    cfg = compose_evaluate([f"benchmark_root={svt_root.parent}", "only=[svt]", "error_sheet=0", "decoder=greedy",
                            *overrides])  # greedy headline: the extra greedy column is left out
    with open_dict(cfg):
        if "90k" in (cfg.benchmarks.svt.get("lexicons") or {}):
            cfg.benchmarks.svt.lexicons["90k"].file = str(svt_root.parent.parent / "words.txt")
    return cfg, evaluate_module.evaluate


def _columns(result) -> list[str]:
    return [c["lexicon"] for c in result["columns"]]


def test_unknown_benchmark_or_lexicon_names_are_errors_listing_the_known_ones(compose_evaluate, svt_root, monkeypatch):
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, "only=[svtt]")
    with pytest.raises(ConfigError) as err:
        evaluate(cfg)
    assert str(err.value) == ("only=['svtt']: unknown benchmark svtt; known: iiit5k, svt, ic13, ic15, svtp, cute80, "
                              "sroie_val (e.g. only=[svt,iiit5k])")
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, "lexicons=[5O]")
    with pytest.raises(ConfigError, match=r"lexicons=\['5O'\]: unknown lexicon setting 5O; those of the selected "
                                          r"benchmarks: 50, 90k \(lexicons=\[\] keeps none\)"):
        evaluate(cfg)


def test_no_benchmark_found_is_an_error_not_an_empty_table(compose_evaluate, tmp_path):
    cfg = compose_evaluate([f"benchmark_root={tmp_path / 'nowhere'}", "ckpt=never_loaded.pt"])
    with pytest.raises(ConfigError) as err:
        evaluate_module.evaluate(cfg)  # before the model is loaded: ckpt does not exist
    assert str(err.value) == (f"no benchmark found (IIIT5K, SVT, IC13, IC15, SVTP, CUTE80) under benchmark_root="
                              f"{tmp_path / 'nowhere'}, which does not exist: set benchmark_root=<folder holding "
                              "iiit5k/, svt/, …> or CRNN_LIT_DATA=<shared data folder holding benchmarks/>")


def test_lexicon_columns_can_be_dropped_from_the_command_line(compose_evaluate, svt_root, monkeypatch, tiny_ckpt):
    common = [f"ckpt={tiny_ckpt}", "~decoder@lm_decoder"]
    for drop, expected in ([[], ["none", "50", "90k", "90k open"]], [["lexicons=[]"], ["none"]],
                           [["lexicons=[50]"], ["none", "50"]], [["benchmarks.svt.lexicons={}"], ["none"]],
                           [["benchmarks.svt.lexicons=null"], ["none"]], [["~benchmarks.svt.lexicons"], ["none"]],
                           [["~decoder@lexicon_decoder"], ["none"]]):
        cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, *common, *drop)
        result = evaluate(cfg)
        assert _columns(result) == expected, drop
    assert result["skipped"] == {"SVT 50": "lexicon columns off (no lexicon_decoder)",
                                 "SVT 90k": "lexicon columns off (no lexicon_decoder)"}


def test_the_open_column_keeps_its_meaning_without_the_lm_column(compose_evaluate, svt_root, monkeypatch, tiny_ckpt,
                                                                 caplog):
    """Dropping the beam+LM column leaves "90k open" under its calibrated fused test; without the open test's own LM
    the column is another rule, named so, with a warning."""
    common = [f"ckpt={tiny_ckpt}", "lexicons=[90k]"]
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, *common, "~decoder@lm_decoder")
    assert _columns(evaluate(cfg)) == ["none", "90k", "90k open"]
    assert "open-ratio" not in caplog.text
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, *common, "lexicon_decoder.lm=null")
    with caplog.at_level(logging.WARNING, logger="crnn_lit.evaluate"):
        assert _columns(evaluate(cfg)) == ["none", "beam+LM", "90k", "90k open-ratio"]
    assert "open lexicon columns without a language model" in caplog.text and "p(w|y) >= 10·p(l'|y)" in caplog.text


def test_an_empty_or_mismatched_per_image_lexicon_is_not_a_column(compose_evaluate, svt_root, monkeypatch, tiny_ckpt,
                                                                  caplog):
    common = [f"ckpt={tiny_ckpt}", "~decoder@lm_decoder", "lexicons=[50]"]
    lexicon = svt_root / "lexicon50.tsv"
    lexicon.write_text("")
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, *common)
    result = evaluate(cfg)
    assert _columns(result) == ["none"] and result["skipped"] == {"SVT 50": f"lexicon file is empty: {lexicon}"}
    lexicon.write_text("other/a.png\thello\n")  # keys of another layout: no image has a list
    result = evaluate(cfg)
    assert result["skipped"]["SVT 50"].startswith(f"no image has a word list in {lexicon} (keys must match")
    lexicon.write_text("img/a.png\tHELLO,HELP\nimg/b.png\tPARIS,WORLD\n")  # half of them: a column, and a warning
    with caplog.at_level(logging.WARNING, logger="crnn_lit.evaluate"):
        assert _columns(evaluate(cfg)) == ["none", "50"]
    assert f"SVT 50: 2 of 4 images have no word list in {lexicon}; they are read lexicon-free" in caplog.text


def test_case_sensitive_headers_and_a_model_without_capitals(compose_evaluate, svt_root, monkeypatch, tiny_ckpt,
                                                            caplog, tmp_path):
    cfg, evaluate = _evaluate(compose_evaluate, monkeypatch, svt_root, f"ckpt={tiny_ckpt}", "~decoder@lm_decoder",
                              "lexicons=[]", "case_sensitive=true")
    with caplog.at_level(logging.WARNING, logger="crnn_lit.evaluate"):
        result = evaluate(cfg)
    table = (tmp_path / "results.md").read_text()
    assert "— case-sensitive, [0-9a-zA-Z], exact match;" in table and "lowercase" not in table
    assert result["protocol"] == "case-sensitive, [0-9a-zA-Z], exact match"
    assert result["columns"][0]["accuracy"] == pytest.approx(1 / 4)  # only x1 has no capital in its label
    assert "case_sensitive=true, but the model has no capital letters (charset lowercase36)" in caplog.text


# --- the Python API ------------------------------------------------------------------------------------------------
def test_a_word_list_is_a_lexicon_and_a_crop_too_narrow_to_read_is_flagged():
    from test_recognizer import draw

    reader = Recognizer.from_pretrained("cpu_scene_text", decoder="lexicon",
                                        decoder_options={"lexicon": ["hotel", "motel"]})
    tall = Image.fromarray(np.full((3000, 3), 128, np.uint8))  # PIL's 3×3000: 0.03 px wide at height 32
    hotel, narrow = reader.read([draw("hotel"), tall])
    assert hotel.text == "hotel" and hotel.error is None
    assert (narrow.text, narrow.confidence) == ("", 0.0)
    assert narrow.error == ("too_narrow (3×3000 is 0.032 px wide at the model's height 32, less than one CTC frame "
                            "(4 px); vertical text reads with turn_tall=1.5)")
    turned = Recognizer.from_pretrained("cpu_scene_text", turn_tall=1.5).read(tall)[0]
    assert turned.error is None  # read turned as well: the rotated crop is 32000 px wide, not flagged


def test_help_lists_only_the_groups_of_its_entry_point():
    predict = compose_config(["inputs=x.png"], config_name="predict", return_hydra_config=True).hydra.help.template
    assert "decoder: beam, beam_lm, greedy, lexicon" in predict and "optimizer" not in predict
    assert "trainer" not in config_module.app_groups("evaluate") and "optimizer: adadelta, adamw" in \
        config_module.app_groups("train")
    assert "augment" not in config_module.app_groups("export")


# --- training ------------------------------------------------------------------------------------------------------
def test_resume_keeps_init_from_and_leaves_metrics_csv_without_repeats(tmp_path, caplog):
    """The original command line (init_from= included) + resume=auto continues the run; metrics.csv gets no second copy
    of the rows logged after the checkpoint and no empty epoch row (images_per_sec 0) from the resume."""
    from conftest import FAST, compose_train
    from crnn_lit.train import train

    common = [o for o in FAST if not o.startswith("logger=")] + [
        "data.val.length=32", "~callbacks.progress_bar", "trainer.log_every_n_steps=1", "trainer.max_epochs=2",
        "logger=csv", "+logger.csv.flush_logs_every_n_steps=1", "callbacks.last_checkpoint.every_n_train_steps=100",
        f"init_from={ROOT / 'data/pretrained/quickstart_synthetic.pt'}"]
    run = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="crnn_lit"), pytest.raises(RuntimeError, match="simulated crash"):
        # after step 6 (epoch 1): the last checkpoint is epoch 0's, at step 4; rows of steps 4 and 5 are on disk
        train(compose_train([*common, "+callbacks.crash._target_=runtime_helpers.CrashAt", "+callbacks.crash.step=6"],
                            run))
    assert "data: train SyntheticWords(seed 42, " in caplog.text and " object at 0x" not in caplog.text
    with caplog.at_level(logging.INFO, logger="crnn_lit"):
        train(compose_train([*common, "resume=auto"], run))
    assert f"init_from={common[-1].split('=', 1)[1]} is not applied again" in caplog.text
    import csv

    with (run / "csv" / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    trained = [int(r["step"]) for r in rows if r["train/loss"]]
    assert trained == list(range(8))  # each step once
    epoch_rows = [(r["epoch"], r["step"]) for r in rows if r["train/images_per_sec"]]
    assert epoch_rows == [("0", "3"), ("1", "7")]
    assert all(float(r["train/images_per_sec"]) > 0 for r in rows if r["train/images_per_sec"])
