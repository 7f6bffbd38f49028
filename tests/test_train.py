"""The Hydra app end to end: every config option composes and runs a fast_dev_run; train → checkpoint → load."""

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from PIL import Image

from conftest import FAST
from corpus import encode, good_entries, word_image, write_folder, write_lmdb_tree, write_real_train
from crnn_lit.checkpoint import CheckpointError, load_model, save_weights
from crnn_lit.config import CONFIG_DIR, ConfigError
from crnn_lit.train import train

# options that cannot run on this machine are composed but not run; ddp_cpu starts a second process by re-running
# the command line, so it runs from the CLI in tests/test_scaling.py instead of in-process here; the cluster recipe
# trains on GPUs (trainer=ddp)
COMPOSE_ONLY = {("trainer", "gpu"), ("trainer", "ddp"), ("trainer", "ddp_cpu"), ("experiment", "cluster_mj_st")}


# groups of other entry points: benchmark (evaluate), decoder and lexicon (predict, evaluate; every option is built
# in tests/test_transcription_search.py)
NOT_TRAIN = ("hydra", "paths", "benchmark", "decoder", "lexicon")


def _options():
    for group in sorted(p for p in CONFIG_DIR.iterdir() if p.is_dir() and p.name not in NOT_TRAIN):
        for option in sorted(group.glob("*.yaml")):
            yield group.name, option.stem


@pytest.fixture
def synth90k_root(tmp_path) -> Path:
    """A tiny tree in the Synth90k archive layout (annotation files + lexicon + images)."""
    root = tmp_path / "90kDICT32px"
    words = ["moniker", "paper", "crnn", "lstm", "alpha", "beta", "gamma", "delta"]
    (root / "1" / "1").mkdir(parents=True)
    (root / "lexicon.txt").write_text("\n".join(words) + "\n")
    lines = []
    rng = np.random.default_rng(0)
    for i, word in enumerate(words * 4):
        rel = f"./1/1/{i}_{word.upper()}_{words.index(word)}.jpg"
        Image.fromarray(rng.integers(0, 255, (32, 16 * len(word)), dtype=np.uint8)).save(root / rel)
        lines.append(f"{rel} {words.index(word)}")
    for split in ("train", "val", "test"):
        (root / f"annotation_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def data_roots(tmp_path, synth90k_root) -> dict[tuple[str, str], list[str]]:
    """Overrides pointing the file-based data options at tiny datasets written here (never at shared data), and
    what an option needs beside it (a height-64 input spec needs a backbone that takes that height)."""
    lmdb_root = write_lmdb_tree(tmp_path / "data_lmdb_release")
    folder = write_folder(tmp_path / "crops", good_entries(30))
    return {
        ("data", "synth90k"): [f"data.root={synth90k_root}"],
        ("experiment", "synth90k"): [f"data.root={synth90k_root}"],
        ("data", "lmdb"): [f"data.root={lmdb_root}"],
        ("data", "mj_st"): [f"data.root={lmdb_root}"],
        ("data", "folder"): [f"data.root={folder}", "data.mix.holdout=0.3"],
        ("data", "real_finetune"): [f"data.root={write_real_train(tmp_path / 'real_train')}"],
        ("experiment", "cpu_scene_text"): [f"data.root={write_real_train(tmp_path / 'real_train_x')}"],
        ("experiment", "scene_text"): [f"data.root={write_real_train(tmp_path / 'real_train_s')}"],
        ("experiment", "scene_text_medium"): [f"data.root={write_real_train(tmp_path / 'real_train_m')}"],
        ("preprocess", "easyocr"): ["backbone=vgg_dtrb"],
        ("preprocess", "ppocr"): ["backbone=pplcnet_v4_tiny"],
        ("experiment", "ppocr_finetune"): [f"data.root={write_real_train(tmp_path / 'real_train_p')}",
                                           f"init_from={_imported_tiny(tmp_path / 'ppocr_v6_tiny.pt')}"],
        # the default reader's fine-tune, on the tiny network (the recipe's small one takes minutes per step here)
        ("experiment", "ppocr_reader"): [f"data.root={write_words_and_lines(tmp_path / 'shared_r')}",
                                         f"init_from={_imported_tiny(tmp_path / 'ppocr_v6_tiny_r.pt')}",
                                         "backbone=pplcnet_v4_tiny", "rnn=conv_mixer"],
        ("experiment", "crnn_lines_sroie"): [f"data.root={write_words_and_lines(tmp_path / 'shared_l')}/lines",
                                             f"init_from={_line_model(tmp_path / 'crnn_lines.pt')}"],
        ("experiment", "cluster_mj_st"): [f"data.root={lmdb_root}"],
        ("data", "words_and_lines"): [f"data.root={write_words_and_lines(tmp_path / 'shared_w')}",
                                      "charset=printable_space"],
        ("data", "lines_mix"): [f"data.root={write_words_and_lines(tmp_path / 'shared_m')}/lines",
                                "charset=upper_space", "preprocess.max_width=null"],
    }


def write_words_and_lines(root: Path) -> Path:
    """A shared-data folder as data=words_and_lines and data=lines_mix read it: real_train/{iiit5k,svt,ic15} and
    lines/{sroie_train,sroie_val} (tiny folders of noise crops, upper-case labels with spaces for the lines)."""
    write_real_train(root / "real_train")
    lines = [(f"images/l{i}.png", encode(word_image("total rm", i)), "TOTAL RM 1.00") for i in range(12)]
    for split in ("sroie_train", "sroie_val"):
        write_folder(root / "lines" / split, lines)
    return root


def _line_model(path: Path) -> Path:
    """A stand-in for experiment=crnn_lines's stage 1: the light CRNN, upper69, lines at their own width."""
    from crnn_lit.charset import Charset
    from crnn_lit.model.build import crnn, network_records
    from crnn_lit.preprocess import Preprocess

    charset = Charset.from_file("upper69")
    config = {"transform": {"_target_": "crnn_lit.model.transform.NoTransform"}, **network_records("light"),
              **Preprocess.from_conf(max_width=None).record()}
    return save_weights(path, crnn("light", charset.num_classes), charset, config)


def _imported_tiny(path: Path) -> Path:
    """A stand-in for an imported PP-OCRv6 tiny (random weights, printable + space head, PP-OCR's input spec)."""
    from crnn_lit.charset import Charset
    from crnn_lit.model.build import network_records, ppocr_v6_tiny
    from crnn_lit.preprocess import Preprocess

    charset = Charset.from_file("printable95")
    config = {"transform": {"_target_": "crnn_lit.model.transform.NoTransform"}, **network_records("ppocr_v6_tiny"),
              **Preprocess.from_conf("ppocr").record()}
    return save_weights(path, ppocr_v6_tiny(charset.num_classes), charset, config)


@pytest.mark.parametrize(("group", "option"), list(_options()))
def test_every_config_option_composes_and_runs(group, option, compose_cfg, data_roots):
    overrides = [*FAST, f"{group}={option}", *data_roots.get((group, option), [])]
    cfg = compose_cfg(overrides)
    assert HydraConfig.get().runtime.choices[group] == option
    if (group, option) in COMPOSE_ONLY:
        return
    cfg.trainer.fast_dev_run = True
    cfg.data.num_workers = 0
    metrics = train(cfg)
    assert np.isfinite(metrics["train/loss"])


def test_synth90k_without_root_names_the_missing_value(compose_cfg):
    cfg = compose_cfg([*FAST, "experiment=synth90k"])
    with pytest.raises(ConfigError, match=r"data\.root"):
        train(cfg)


def test_synth90k_with_wrong_root_says_what_is_missing(compose_cfg, tmp_path):
    cfg = compose_cfg([*FAST, "experiment=synth90k", f"data.root={tmp_path}"])
    with pytest.raises(InstantiationException, match=r"data\.root=.*annotation_train\.txt is missing"):
        train(cfg)


def test_train_writes_checkpoint_that_loads_with_its_charset(compose_cfg, tmp_path):
    cfg = compose_cfg([*FAST, "charset=case_sensitive", "logger=csv"])
    metrics = train(cfg)
    assert {"val/acc", "val/cer", "val/ned", "val/loss", "train/loss"} <= set(metrics)
    assert 0.0 <= metrics["val/acc"] <= 1.0
    best = next((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    assert (tmp_path / "csv" / "metrics.csv").read_text().count("val/acc") == 1
    curve = (tmp_path / "learning_curve.csv").read_text().splitlines()  # fit's one validation, not the final one
    assert curve[0].startswith("step,epoch,images,wall_hours,cpu_hours,val/acc") and len(curve) == 2
    assert curve[1].split(",")[2] == "64"  # training images seen: samples_per_epoch

    loaded = load_model(best)
    assert loaded.charset.chars == "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    assert loaded.model.head.out_features == 63
    assert loaded.config["backbone"]["channels"] == [32, 64, 96, 96, 192, 192, 192]

    # the small weights-only export round-trips too, in fp16, to the same outputs (within fp16 rounding)
    small = save_weights(tmp_path / "model.pt", loaded.model, loaded.charset, loaded.config, half=True)
    again = load_model(small)
    x = torch.randn(2, 1, 32, 80)
    with torch.no_grad():
        assert torch.allclose(loaded.model(x), again.model(x), atol=5e-2)
    assert again.charset == loaded.charset


def test_checkpoint_with_altered_charset_fails_clearly(tmp_path, compose_cfg):
    cfg = compose_cfg([*FAST])
    train(cfg)
    best = next((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    ckpt = torch.load(best, weights_only=True)
    ckpt["crnn_lit"]["charset"]["chars"] = "abc"
    torch.save(ckpt, tmp_path / "tampered.ckpt")
    with pytest.raises(CheckpointError, match="charset"):
        load_model(tmp_path / "tampered.ckpt")
    # same length, two letters swapped: only the fingerprint can tell
    chars = ckpt["crnn_lit"]["charset"]["chars"] = "0123456789bacdefghijklmnopqrstuvwxyz"
    torch.save(ckpt, tmp_path / "swapped.ckpt")
    with pytest.raises(CheckpointError, match=f"altered after saving.*{chars}"):
        load_model(tmp_path / "swapped.ckpt")
    loaded = load_model(best)
    with pytest.raises(CheckpointError, match="charset mismatch"):
        from crnn_lit.charset import Charset
        load_model(best, expect_charset=Charset("abc"))
    assert loaded.charset.chars.startswith("0123")


def test_init_from_with_another_charset_fine_tunes_with_a_fresh_head(compose_cfg, tmp_path, caplog):
    train(compose_cfg([*FAST]))
    source = next((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    cfg = compose_cfg([*FAST, "charset=case_sensitive", f"init_from={source}",
                       f"callbacks.model_checkpoint.dirpath={tmp_path / 'finetuned'}"])
    with caplog.at_level("INFO", logger="crnn_lit.train"):
        metrics = train(cfg)
    assert "head rebuilt by character (63 of 63 rows" in caplog.text and np.isfinite(metrics["train/loss"])
    assert load_model(next((tmp_path / "finetuned").glob("epoch*.ckpt"))).model.head.out_features == 63
    with pytest.raises(ConfigError, match="init_from"):
        train(compose_cfg([*FAST, f"init_from={source}", f"ckpt_path={source}"]))


def test_a_chained_stage_counts_on_from_its_source(compose_cfg, tmp_path, capsys):
    """init_from a weights file written by `python -m crnn_lit.checkpoint weights`: images and CPU hours go on."""
    from crnn_lit.checkpoint import main as checkpoint_cli

    train(compose_cfg([*FAST]))
    stage1 = (tmp_path / "learning_curve.csv").read_text().splitlines()[1].split(",")
    best = next((tmp_path / "checkpoints").glob("epoch*.ckpt"))
    checkpoint_cli(["weights", str(best), str(tmp_path / "stage1.pt")])
    assert "CPU-hours of training" in capsys.readouterr().out
    assert load_model(tmp_path / "stage1.pt").training["images"] == 64

    train(compose_cfg([*FAST, f"init_from={tmp_path / 'stage1.pt'}",
                       f"callbacks.learning_curve.path={tmp_path / 'stage2.csv'}",
                       f"callbacks.model_checkpoint.dirpath={tmp_path / 'stage2'}"]))
    stage2 = (tmp_path / "stage2.csv").read_text().splitlines()[1].split(",")
    assert stage2[2] == "128"  # 64 images in each stage
    assert float(stage2[4]) > float(stage1[4]) > 0  # cpu_hours keep growing across stages


def test_checkpoint_name_carries_the_monitored_metric(compose_cfg, tmp_path):
    train(compose_cfg([*FAST, "optimized_metric=val/cer", "optimized_mode=min"]))
    (best,) = (tmp_path / "checkpoints").glob("epoch*.ckpt")
    assert best.name.startswith("epoch000-cer") and "acc" not in best.name
