"""evaluate: exact table numbers for a model whose predictions are known; unreadable images count as errors."""

import json

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image

import crnn_lit.evaluate as evaluate_module
import crnn_lit.reading.recognizer as recognizer_module  # evaluate reads through Recognizer: its network, faked
from corpus import write_folder
from crnn_lit.benchmarks import select_benchmarks
from crnn_lit.reading.inference import Recognized

CHARS = "0123456789abcdefghijklmnopqrstuvwxyz"
# image → (label in labels.tsv, what the "model" reads, its 50-word-style lexicon)
BENCH = {
    "img/a.png": ("Hello", "hello", ["HELLO", "HELP"]),
    "img/b.png": ("WORLD!", "w0rld", ["PARIS", "WORLD"]),
    "img/c.png": ("abc", "abd", ["ABC", "XYZ"]),
    "img/d.png": ("x1", "x1", ["X1", "Y2"]),
}


def crafted(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs whose best path is blank c1 blank c2 … blank with p = 0.9 per frame."""
    steps = max(2 * len(t) + 1 for t in texts)
    probs = torch.full((steps, len(texts), len(CHARS) + 1), 0.1 / len(CHARS))
    for n, text in enumerate(texts):
        path = [0] + [c for ch in text for c in (CHARS.index(ch) + 1, 0)]
        for t in range(steps):
            probs[t, n, path[t] if t < len(path) else 0] = 0.9
    return probs.log(), torch.tensor([2 * len(t) + 1 for t in texts])


def fake_recognize(backend, batches, timing=None):
    for b in batches:
        log_probs, lengths = crafted([BENCH[k][1] for k in b.keys])
        if timing is not None:
            timing.images += len(b)
            timing.seconds += 0.01
        yield Recognized(log_probs, lengths, b.keys, b.labels)


@pytest.fixture
def bench_root(tmp_path):
    root = tmp_path / "benchmarks" / "svt"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for key in BENCH:
        Image.fromarray(rng.integers(0, 255, (32, 80), dtype=np.uint8)).save(root / key)
    (root / "img" / "e.png").write_bytes(b"\x89PNG truncated")
    labels = [f"{k}\t{v[0]}" for k, v in BENCH.items()] + ["img/e.png\tzz"]
    (root / "labels.tsv").write_text("\n".join(labels) + "\n")
    lex = [f"{k}\t{','.join(v[2])}" for k, v in BENCH.items()] + ["img/e.png\tZZ,YY"]
    (root / "lexicon50.tsv").write_text("\n".join(lex) + "\n")
    return root.parent


def test_evaluate_table_numbers_are_exact(tiny_ckpt, bench_root, compose_evaluate, monkeypatch, tmp_path):
    monkeypatch.setattr(recognizer_module, "recognize", fake_recognize)
    cfg = compose_evaluate([f"ckpt={tiny_ckpt}", f"benchmark_root={bench_root}", "only=[svt,iiit5k]",
                            "decoder=greedy", "~decoder@lm_decoder"])
    with open_dict(cfg):
        del cfg.benchmarks.svt.lexicons["90k"]  # keep the fixture to its own per-image lexicon
    result = evaluate_module.evaluate(cfg)
    none, fifty = result["columns"]
    assert (none["lexicon"], none["images"], none["unreadable"]) == ("none", 5, 1)
    assert none["accuracy"] == pytest.approx(2 / 5)  # hello ✓ (protocol folds case), w0rld ✗, abd ✗, x1 ✓, unreadable ✗
    assert none["cer"] == pytest.approx((0 + 1 + 1 + 0 + 2) / (5 + 5 + 3 + 2 + 2))
    assert fifty["lexicon"] == "50" and fifty["accuracy"] == pytest.approx(4 / 5)  # the lexicon fixes w0rld and abd
    assert result["combined_accuracy_lexicon_free"] == pytest.approx(2 / 5)
    assert "IIIT5K" in result["skipped"]
    table = (tmp_path / "results.md").read_text()
    assert "| crnn_lit | 40.0 | 80.0 | 40.0 |" in table
    rows = (tmp_path / "predictions" / "SVT_50.tsv").read_text().splitlines()
    assert "img/b.png\tWORLD!\tworld\t" in "\n".join(rows) and rows[-1].startswith("img/e.png\tzz\t\t0.0000\t0")
    assert json.loads((tmp_path / "results.json").read_text())["columns"][1]["images"] == 5
    sheet = Image.open(tmp_path / "errors" / "SVT.png")  # the two lexicon-free misreadings (w0rld, abd), one row each
    assert sheet.height == 2 * (2 * 32 + 8)


def test_evaluate_headline_is_beam_lm_with_greedy_beside(tiny_ckpt, bench_root, compose_evaluate, monkeypatch,
                                                         tmp_path):
    """By default the headline lexicon-free column decodes with decoder=beam_lm and a "greedy" column (the paper's
    protocol) stands beside it: with a confident model whose only doubt is 0-or-o in "w0rld", the LM reads "world";
    what greedy reads right stays right. decoder=greedy gives the paper's headline and a "beam+LM" column."""

    def confident(backend, batches, timing=None):
        for b in batches:
            texts = [BENCH[k][1] for k in b.keys]
            steps = max(2 * len(t) + 1 for t in texts)
            probs = torch.full((steps, len(texts), len(CHARS) + 1), 1e-6)
            for n, text in enumerate(texts):
                for t in range(steps):
                    c = CHARS.index(text[t // 2]) + 1 if t % 2 and t // 2 < len(text) else 0
                    probs[t, n, c] = 1.0
                    if text == "w0rld" and t == 3:  # the doubtful glyph
                        probs[t, n, CHARS.index("o") + 1] = 0.8
            yield Recognized((probs / probs.sum(-1, keepdim=True)).log(), torch.tensor([2 * len(t) + 1 for t in texts]),
                             b.keys, b.labels)

    monkeypatch.setattr(recognizer_module, "recognize", confident)
    for headline, other in (("beam_lm", "greedy"), ("greedy", "beam+LM")):
        cfg = compose_evaluate([f"ckpt={tiny_ckpt}", f"benchmark_root={bench_root}", "only=[svt]",
                                f"decoder={headline}"])
        with open_dict(cfg):
            cfg.benchmarks.svt.lexicons = None
        result = evaluate_module.evaluate(cfg)
        none, second = result["columns"]  # the headline's twin among the extra columns is left out
        assert (none["lexicon"], second["lexicon"], second["images"]) == ("none", other, 5)
        lm, greedy = (none, second) if headline == "beam_lm" else (second, none)
        readings = {row.split("\t")[0]: row.split("\t")[2] for row in
                    (tmp_path / "predictions" / f"SVT_{lm['lexicon']}.tsv").read_text().splitlines()[1:]}
        assert readings == {"img/a.png": "hello", "img/b.png": "world", "img/c.png": "abd", "img/d.png": "x1",
                            "img/e.png": ""}
        assert (greedy["accuracy"], lm["accuracy"]) == (pytest.approx(2 / 5), pytest.approx(3 / 5))
        assert f"SVT {other}" in (tmp_path / "results.md").read_text()
        assert result["combined_accuracy_lexicon_free"] == pytest.approx(none["accuracy"])  # the headline only


def test_evaluate_reads_dtrb_lmdbs_by_their_folder_names(tiny_ckpt, compose_evaluate, monkeypatch, tmp_path):
    """A DTRB/parseq evaluation tree (IIIT5k_3000/, SVTP/ as LMDBs in DTRB's key layout) beside one of our folders:
    every image is read, the SVT lexicon column whose file is absent is skipped with its reason, not a crash."""
    from corpus import good_entries, write_dtrb_lmdb

    def labelled(backend, batches, timing=None):  # a "model" that reads every word right (the label, folded)
        for b in batches:
            texts = ["".join(c for c in label.lower() if c in CHARS) for label in b.labels]
            log_probs, lengths = crafted(texts)
            yield Recognized(log_probs, lengths, b.keys, b.labels)

    monkeypatch.setattr(recognizer_module, "recognize", labelled)
    root = tmp_path / "evaluation"
    write_dtrb_lmdb(root / "IIIT5k_3000", [(data, label) for _, data, label in good_entries(12)])
    write_dtrb_lmdb(root / "SVTP", [(data, label) for _, data, label in good_entries(5, seed=50)])
    write_folder(root / "svt", good_entries(4, seed=90))  # no lexicon50.tsv beside it
    cfg = compose_evaluate([f"ckpt={tiny_ckpt}", f"benchmark_root={root}", "only=[iiit5k,svt,svtp]",
                            "decoder=greedy", "~decoder@lm_decoder"])
    with open_dict(cfg):
        for key in ("iiit5k", "svt"):
            cfg.benchmarks[key].lexicons.pop("90k", None)
    result = evaluate_module.evaluate(cfg)
    got = {(c["benchmark"], c["lexicon"]): (c["images"], c["accuracy"]) for c in result["columns"]}
    assert got == {("IIIT5K", "none"): (12, 1.0), ("SVT", "none"): (4, 1.0), ("SVTP", "none"): (5, 1.0)}
    assert result["skipped"]["SVT 50"].startswith("lexicon file not found")
    rows = (tmp_path / "predictions" / "IIIT5K_none.tsv").read_text().splitlines()
    assert sorted(row.split("\t")[0] for row in rows[1:]) == [f"image-{i:09d}" for i in range(1, 13)]


def test_evaluate_reads_sideways_crops_with_turn_tall(compose_evaluate, tmp_path):
    """turn_tall reaches evaluate: the shipped model reads a word drawn sideways only with it, and says so."""
    from test_recognizer import draw

    root = tmp_path / "benchmarks" / "iiit5k"
    (root / "img").mkdir(parents=True)
    Image.fromarray(np.asarray(draw("hotel"))).save(root / "img" / "upright.png")
    Image.fromarray(np.rot90(np.asarray(draw("coffee")))).save(root / "img" / "sideways.png")
    (root / "labels.tsv").write_text("img/upright.png\tHOTEL\nimg/sideways.png\tCOFFEE\n")
    base = [f"benchmark_root={root.parent}", "only=[iiit5k]", "decoder=greedy", "~decoder@lm_decoder", "error_sheet=0"]
    accuracy = {}
    for turn_tall in ("null", "1.5"):
        result = evaluate_module.evaluate(compose_evaluate([*base, f"turn_tall={turn_tall}"]))
        accuracy[turn_tall] = [c["accuracy"] for c in result["columns"] if c["lexicon"] == "none"]
    assert accuracy == {"null": [0.5], "1.5": [1.0]}
    assert result["turn_tall"] == {"min_aspect": 1.5, "turned": {"IIIT5K": 1}}


def test_evaluate_line_protocol(tiny_ckpt, compose_evaluate, monkeypatch, tmp_path):
    """protocol=line on one's own folder: case and the ends' whitespace do not count, a missing space does; the same
    readings under the word protocol are all right. The error sheet shows each line whole above its two texts."""
    lines = {"a.png": (" Hello  World", "helloworld"), "b.png": ("X1", "x1"), "c.png": ("abc", "abd")}
    root = tmp_path / "lines"
    root.mkdir()
    rng = np.random.default_rng(0)
    for key in lines:
        Image.fromarray(rng.integers(0, 255, (32, 1500), dtype=np.uint8)).save(root / key)
    (root / "labels.tsv").write_text("".join(f"{k}\t{v[0]}\n" for k, v in lines.items()))

    def reads(backend, batches, timing=None):
        for b in batches:
            log_probs, lengths = crafted([lines[k][1] for k in b.keys])
            yield Recognized(log_probs, lengths, b.keys, b.labels)

    monkeypatch.setattr(recognizer_module, "recognize", reads)
    accuracy = {}
    for protocol in ("word", "line"):
        cfg = compose_evaluate([f"ckpt={tiny_ckpt}", f"inputs={root}", f"protocol={protocol}", "decoder=greedy",
                                "~decoder@lm_decoder"])
        (column,) = evaluate_module.evaluate(cfg)["columns"]
        accuracy[protocol] = column["accuracy"]
    assert accuracy == {"word": pytest.approx(2 / 3), "line": pytest.approx(1 / 3)}
    assert (tmp_path / "results.md").read_text().startswith("Line accuracy (%)")
    sheet = Image.open(tmp_path / "errors" / "lines.png")
    assert sheet.width > 1200  # the whole 1,500-px line is shown, cut into rows, not cropped to a word's cell


def test_evaluate_default_selection_is_the_word_benchmarks(compose_evaluate):
    cfg = compose_evaluate([])
    assert "sroie_val" not in select_benchmarks(cfg)
    assert list(select_benchmarks(compose_evaluate(["protocol=line"]))) == ["sroie_val"]
