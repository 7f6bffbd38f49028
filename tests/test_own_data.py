"""Your own data, first class: labels.tsv, DTRB's gt.txt and mmocr's `path label` files are read by data=folder,
the inspector, the converter and evaluate; data=lmdb takes train/val roots alone; an empty training set stops
with one line saying what was skipped."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hydra.utils import instantiate
from PIL import Image

from conftest import FAST, ROOT
from corpus import encode, good_entries, word_image, write_dtrb_lmdb
from crnn_lit.config import ConfigError, data_module
from crnn_lit.data import cli
from crnn_lit.data.sources import detect_format, open_source
from crnn_lit.data.sources.folder import FolderDataset
from crnn_lit.task import user_error


def crops(root, labels: dict[str, str], name: str, separator: str = "\t"):
    """Images ``root/images/<i>.png`` and the labels file ``root/<name>`` listing them with ``separator``."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(labels):
        Image.fromarray(word_image(label, i)).save(root / "images" / f"{i}.png")
        lines.append(f"images/{i}.png{separator}{label}")
    (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_gt_txt_and_space_separated_files_are_read_as_they_are(tmp_path, capsys):
    dtrb = crops(tmp_path / "dtrb", ["Hello", "New York", "$4.00"], "gt.txt")
    mmocr = crops(tmp_path / "mmocr", ["Hello", "New York", "$4.00"], "train_label.txt", separator=" ")
    assert FolderDataset(dtrb).labels == ["Hello", "New York", "$4.00"]  # gt.txt found without being named
    spaced = FolderDataset(mmocr, "train_label.txt")
    assert spaced.labels == ["Hello", "New York", "$4.00"]  # split at the first space: the label keeps its own
    assert (detect_format(dtrb), detect_format(mmocr / "train_label.txt")) == ("folder", "folder")
    assert open_source(mmocr / "train_label.txt").labels == spaced.labels
    with pytest.raises(ValueError, match="gt.txt, labels.txt.*give its path"):
        detect_format(mmocr)  # a labels file of another name is not guessed
    assert cli.main(["convert", "--input", str(mmocr / "train_label.txt"), "--output", str(tmp_path / "db"),
                     "--workers", "1"]) == 0
    assert "3 samples written from 3 read" in capsys.readouterr().out
    assert cli.main(["inspect", str(dtrb)]) == 0
    assert "3 samples; 3 usable" in capsys.readouterr().out


def test_a_file_of_the_wrong_form_skips_every_line_and_says_so(tmp_path):
    """A comma-separated file: no tab on its first line, so `path label` lines are expected, and none has a space."""
    root = crops(tmp_path / "csv", ["hello", "world"], "labels.txt", separator=",")
    folder = FolderDataset(root)
    assert len(folder) == 0 and dict(folder.skipped.counts) == {"no_space": 2}


def test_data_folder_reads_a_detected_or_named_labels_file(compose_cfg, tmp_path):
    root = crops(tmp_path / "mine", [f"word{i}" for i in range(20)], "gt.txt")
    crops(root, [f"other{i}" for i in range(20)], "test_label.txt", separator=" ")
    for overrides, prefix in (([], "word"), (["data.labels_file=test_label.txt"], "other")):
        cfg = compose_cfg([*FAST, "data=folder", f"data.root={root}", *overrides])
        data = data_module(cfg.data, charset=instantiate(cfg.charset), output_length=lambda w: w // 4 + 1)
        labels = [data.train_set.source.label(i) for i in range(len(data.train_set))] + \
                 [data.val_set.source.label(i) for i in range(len(data.val_set))]
        assert sorted(labels) == sorted(f"{prefix}{i}" for i in range(20))


def test_lmdb_train_and_val_roots_need_no_data_root(compose_cfg, tmp_path):
    samples = [(data, label) for _, data, label in good_entries(6)]
    train, val = write_dtrb_lmdb(tmp_path / "train/real", samples), write_dtrb_lmdb(tmp_path / "val", samples[:3])
    cfg = compose_cfg([*FAST, "data=lmdb", f"data.train.root={train}", f"data.val.root={val}"])
    data = data_module(cfg.data, charset=instantiate(cfg.charset), output_length=lambda w: w // 4 + 1)
    assert (len(data.train_set), len(data.val_set)) == (6, 3)
    cfg = compose_cfg([*FAST, "data=lmdb"])
    with pytest.raises(Exception) as raised:  # the entry point prints the user error inside
        data_module(cfg.data, charset=instantiate(cfg.charset), output_length=lambda w: w // 4 + 1)
    assert str(user_error(raised.value)) == ("data.train.root is not set: give data.train.root=<path>, or "
                                             "data.root=<path> (then data.train.root = <data.root>/training)")


@pytest.mark.timeout(120)
def test_an_empty_training_set_stops_with_one_line_naming_the_skips(tmp_path):
    root = crops(tmp_path / "csv", ["hello", "world", "again"], "gt.txt", separator=",")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-m", "crnn_lit.train", "data=folder", f"data.root={root}", *FAST,
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, timeout=110,
                          check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        "crnn_lit.train: error: no training sample in HoldoutSplit(train, 10% held out, 0 of 0): every line of its "
        "index was skipped: no_space=3 (e.g. gt.txt:1 'images/0.png,hello'; gt.txt:2 'images/1.png,world'; "
        "gt.txt:3 'images/2.png,again')")


def test_inspector_shows_what_the_policy_does_to_kept_labels(tmp_path, capsys):
    root = crops(tmp_path / "mine", ["$4.00", "Hello", "don't", "!!!", "ok"], "gt.txt")
    assert cli.main(["inspect", str(root), "--charset", "lowercase"]) == 0  # oov: remove
    text = capsys.readouterr().out
    assert "characters outside the charset removed (oov remove): 2, e.g. '$4.00' → '400', \"don't\" → 'dont'" in text
    assert "case folded or Unicode-normalized only: 1, e.g. 'Hello' → 'hello'" in text
    assert "empty_label: 1\n    images/3.png '!!!' (no character in the charset)" in text  # not out_of_charset
    assert "out_of_charset" not in text


def test_evaluate_reads_your_own_test_sets(compose_evaluate, tmp_path):
    """`evaluate inputs=<folder>` (or a list): one lexicon-free column per set, named after it; no benchmark read."""
    from crnn_lit.evaluate import evaluate
    from test_recognizer import draw

    for name, words, form in (("shop", ["hotel", "coffee"], "gt.txt"), ("street", ["station", "Hotel"], "labels.txt")):
        (tmp_path / name).mkdir()
        for i, word in enumerate(words):
            Image.fromarray(np.asarray(draw(word))).save(tmp_path / name / f"{i}.png")
        sep = "\t" if form == "gt.txt" else " "
        (tmp_path / name / form).write_text("".join(f"{i}.png{sep}{w}\n" for i, w in enumerate(words)))
    base = ["decoder=greedy", "~decoder@lm_decoder", "error_sheet=0"]  # one column per set
    result = evaluate(compose_evaluate([*base, f"inputs={tmp_path / 'shop'}"]))
    assert [(c["benchmark"], c["images"], c["accuracy"]) for c in result["columns"]] == [("shop", 2, 1.0)]
    result = evaluate(compose_evaluate([*base, f"inputs=[{tmp_path / 'shop'},{tmp_path / 'street' / 'labels.txt'}]"]))
    assert [(c["benchmark"], c["accuracy"]) for c in result["columns"]] == [("shop", 1.0), ("labels", 1.0)]
    assert (tmp_path / "predictions" / "labels_none.tsv").read_text().count("\n") == 3
    with pytest.raises(ConfigError, match="inputs: .*nowhere does not exist"):
        evaluate(compose_evaluate([*base, f"inputs={tmp_path / 'nowhere'}"]))


def test_lmdb_test_set_through_evaluate_inputs(compose_evaluate, tmp_path):
    from crnn_lit.evaluate import evaluate
    from test_recognizer import draw

    write_dtrb_lmdb(tmp_path / "mine_lmdb", [(encode(np.asarray(draw(w))), w) for w in ("hotel", "coffee", "2024")])
    result = evaluate(compose_evaluate(["decoder=greedy", "~decoder@lm_decoder", "error_sheet=0",
                                        f"inputs={tmp_path / 'mine_lmdb'}"]))
    assert [(c["benchmark"], c["images"], c["accuracy"]) for c in result["columns"]] == [("mine_lmdb", 3, 1.0)]


def test_data_variables_reach_the_sources_not_the_module(compose_cfg, tmp_path):
    """`root`, `labels_file`, `mix` are values a data node's sources interpolate; the data module never takes them,
    and any other key it does not know is still an error, not dropped."""
    root = crops(tmp_path / "mine", [f"word{i}" for i in range(20)], "gt.txt")
    cfg = compose_cfg([*FAST, "data=folder", f"data.root={root}"])
    data = data_module(cfg.data, charset=instantiate(cfg.charset), output_length=lambda w: w // 4 + 1)
    assert str(data.train_set.source.source.root) == str(root) and not hasattr(data, "mix")
    cfg = compose_cfg([*FAST, "data=folder", f"data.root={root}", "+data.batch_sise=8"])
    with pytest.raises(Exception, match="batch_sise"):
        data_module(cfg.data, charset=instantiate(cfg.charset), output_length=lambda w: w // 4 + 1)


def sideways_jpeg(path, word: str = "SALE"):
    """A clean printed word stored as a phone stores it: pixels turned a quarter, EXIF Orientation=6 (turn it
    90° clockwise to show it). Returns the upright image."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.truetype(str(ROOT / "data/fonts/dejavu/DejaVuSans-Bold.ttf"), 40)
    upright = Image.new("RGB", (int(font.getlength(word)) + 20, 56), (235, 235, 235))
    ImageDraw.Draw(upright).text((10, 4), word, font=font, fill=(20, 20, 20))
    exif = Image.Exif()
    exif[0x0112] = 6
    upright.rotate(90, expand=True).save(path, quality=95, exif=exif)
    return upright


def test_exif_orientation_is_applied_wherever_an_image_is_read(tmp_path, capsys):
    """A JPEG stored sideways with Orientation=6 is read upright: decoding, header sizes, in-memory PIL images, a
    folder dataset, the converter's LMDB, and what the shipped model reads."""
    from crnn_lit import Recognizer
    from crnn_lit.data.sources.image_io import decode_image, image_array, image_size
    from crnn_lit.data.sources.lmdb import LmdbDataset

    (tmp_path / "set").mkdir()
    path = tmp_path / "set" / "sale.jpg"
    upright = sideways_jpeg(path)
    with Image.open(path) as stored:
        assert stored.size == upright.size[::-1]  # stored sideways
        in_memory = image_array(stored, "mem")
    decoded = decode_image(path, "sale.jpg")
    assert decoded.shape[:2] == (upright.height, upright.width) == in_memory.shape[:2]
    assert np.abs(decoded.astype(int) - np.asarray(upright, dtype=int)).mean() < 3  # upright, not mirrored
    assert image_size(path) == upright.size
    (tmp_path / "set" / "gt.txt").write_text("sale.jpg\tSALE\n", encoding="utf-8")
    folder = FolderDataset(tmp_path / "set")
    assert folder.size(0) == upright.size and folder[0].image.shape[:2] == decoded.shape[:2]
    assert cli.main(["convert", "--input", str(tmp_path / "set"), "--output", str(tmp_path / "db"),
                     "--workers", "1"]) == 0
    lmdb = LmdbDataset(tmp_path / "db")
    assert lmdb.size(0) == upright.size and lmdb[0].image.shape[:2] == decoded.shape[:2]
    reader = Recognizer.from_pretrained(decoder="greedy")
    assert [p.text.lower() for p in reader.read([str(path), Image.open(path)])] == ["sale", "sale"]


def test_unlabelled_images_are_counted_by_inspect_and_at_training_start(tmp_path, capsys, caplog):
    root = crops(tmp_path / "set", ["Hello", "York", "Sale"], "gt.txt")
    for name in ("images/extra.png", "loose.jpg"):
        Image.fromarray(word_image("Extra", 7)).save(root / name)
    (root / "notes.md").write_text("not an image")
    with caplog.at_level("WARNING"):
        folder = FolderDataset(root)  # what the data module builds when training starts
    assert len(folder) == 3 and folder.skipped.counts == {"unlabelled": 2}
    assert "skipped 2: unlabelled=2 (e.g. images/extra.png; loose.jpg)" in caplog.text
    assert FolderDataset(root, limit=2).skipped.counts == {}  # a limited read leaves images out on purpose
    assert cli.main(["inspect", str(root)]) == 0
    assert "skipped while reading the index: unlabelled=2 (e.g. images/extra.png; loose.jpg)" in capsys.readouterr().out


@pytest.mark.parametrize(("encoding", "named"), [("utf-16", "UTF-16LE"), ("utf-16-le", "UTF-16LE (no byte-order mark)"),
                                                 ("utf-16-be", "UTF-16BE (no byte-order mark)")])
def test_a_labels_file_in_utf16_names_its_encoding_and_the_fix(tmp_path, capsys, encoding, named):
    root = crops(tmp_path / "set", ["Hello", "York"], "gt.txt")
    (root / "gt.txt").write_bytes("images/0.png\tHello\nimages/1.png\tYork\n".encode(encoding))
    with pytest.raises(ConfigError, match=rf"gt.txt is {re.escape(named)}, not UTF-8: convert it, e.g. `iconv -f"):
        FolderDataset(root)
    assert cli.main(["inspect", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"is {named}, not UTF-8" in err and "-t UTF-8" in err
