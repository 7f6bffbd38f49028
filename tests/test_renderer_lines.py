"""The renderer drawing lines (renderer=lines): labels, spaces, content, widths, determinism, input specs, configs."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate

from conftest import PREPROCESS
from crnn_lit.charset import Charset
from crnn_lit.config import compose_config
from crnn_lit.data.sources.renderer import WordRenderer

ROOT = Path(__file__).resolve().parents[1]
PRICE = re.compile(r"(RM ?|\$ ?)?\b\d{1,3}(,\d{3})*\.\d{2}\b")
DATE = re.compile(r"\b(\d{2}/\d{2}/\d{4}|\d{4}-\d{2}-\d{2})\b")
TIME = re.compile(r"\b\d{1,2}:\d{2}\b")


def make(seed: int = 0, max_width: int | None = None, **kw) -> WordRenderer:
    """renderer=lines as configured (its assets, its style), at the test input spec with max_width as given;
    other keyword arguments go to the style (its fields) or the input spec."""
    spec = compose_config(["renderer=lines"]).renderer
    style = {**spec.style, **{k: kw.pop(k) for k in list(kw) if k in spec.style}}
    return WordRenderer.from_spec({**spec, "style": style}, PREPROCESS.replace(max_width=max_width, **kw), seed=seed)


@pytest.fixture(scope="module")
def lines() -> WordRenderer:
    return make()


@pytest.fixture(scope="module")
def plans(lines):
    return [lines.plan(i).layout for i in range(200)]


def test_labels_are_the_drawn_text_collapsed_and_in_the_line_charsets(lines, plans):
    printable95 = Charset.from_file("printable95")
    upper69 = Charset.from_file("upper69")
    for i, lay in enumerate(plans):
        assert lay.label == " ".join(lay.text.split()) and lay.label, lay.text
        assert lines.label(i) == lay.label
        assert 1 <= len(lay.label) <= lines.max_word_len == 48
        assert printable95.normalize(lay.label) == lay.label  # every character drawn is a class, spaces single
        assert upper69.normalize(lay.label) == lay.label.upper()  # receipts' charset: folded, nothing dropped
    # a double space is drawn now and then, never labelled
    assert any("  " in lay.text for lay in plans) and not any("  " in lay.label for lay in plans)


def test_lines_hold_spaces_numbers_prices_dates_and_punctuation(plans):
    labels = [lay.label for lay in plans]
    assert sum(" " in s for s in labels) / len(labels) > 0.5
    assert sum(bool(PRICE.search(s)) for s in labels) >= 20
    assert sum(bool(DATE.search(s)) for s in labels) >= 3
    assert sum(bool(TIME.search(s)) for s in labels) >= 3
    assert set(":,.-/&()#@%*") <= set("".join(labels))
    upper = sum(s == s.upper() and any(c.isalpha() for c in s) for s in labels)
    mixed = sum(any(c.islower() for c in s) for s in labels)
    assert upper > 60 and mixed > 30  # receipt capitals and mixed case


def test_planned_widths_are_drawn_widths_unbounded_or_capped(lines):
    widths = []
    for i in range(40):
        s = lines.render(i)
        assert s.image.shape == (32, lines.width(i)) and s.image.dtype == np.uint8
        assert s.label == lines.label(i)
        widths.append(s.image.shape[1])
    assert max(widths) > 400  # max_width null: long lines at their own width
    capped = make(max_width=400)
    assert all(capped.width(i) <= 400 for i in range(200))
    assert [capped.label(i) for i in range(40)] == [lines.label(i) for i in range(40)]


def test_a_space_is_the_faces_space_advance_times_word_space():
    def widths(scale):
        r = make(word_space=(scale, scale), max_width=None)
        return [(r.plan(i).layout.label, r.plan(i).layout.xs, r.plan(i).layout.text) for i in range(60)]

    narrow, wide = widths(1.0), widths(2.0)
    for (label, xs, text), (label2, xs2, _) in zip(narrow, wide, strict=True):
        assert label == label2  # the spacing is drawn after the text: the same lines
        if " " in text:
            k = text.index(" ")
            assert xs2[k + 1] - xs2[k] > xs[k + 1] - xs[k]  # the gap after the first space grew
        else:
            assert xs == xs2


def test_same_seed_and_index_give_the_same_line_in_any_order_and_after_pickling(lines):
    other = pickle.loads(pickle.dumps(make()))
    for i in [7, 123456789, 0, 10**12, 3]:
        a, b = lines.render(i), other.render(i)
        assert a.label == b.label and a.key == b.key == f"render:0:{i}"
        assert np.array_equal(a.image, b.image)
    seeded = make(seed=1)
    assert sum(seeded.label(i) == lines.label(i) for i in range(20)) <= 2


def test_colour_at_height_48_as_ppocr_reads():
    r = make(height=48, channels=3, min_width=16, max_width=3200)
    for i in range(10):
        s = r.render(i)
        assert s.image.shape == (48, r.width(i), 3) and s.image.dtype == np.uint8


def test_charset_chars_keep_only_what_the_charset_can_say():
    spec = compose_config(["renderer=lines"]).renderer
    allowed = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ ")  # no punctuation; case is the charset's to fold
    r = WordRenderer.from_spec(spec, PREPROCESS.replace(max_width=None), charset_chars="".join(sorted(allowed)))
    labels = [r.plan(i).layout.label for i in range(100)]
    assert all(s and set(s.upper()) <= allowed for s in labels)
    assert any(c.islower() for s in labels for c in s)  # mixed-case print stays drawn as it is


def test_configs_select_the_line_renderer():
    cfg = compose_config(["data=synthetic_lines", "charset=upper_space", "preprocess.max_width=null"])
    assert cfg.renderer.content == "lines"
    train = instantiate(cfg.data.train)
    assert train.renderer.content == "lines" and " " in "".join(train.renderer.label(i) for i in range(10))
    assert "content" not in compose_config(["data=synthetic"]).renderer  # words, as before
    mix = compose_config(["data=lines_mix"])
    assert mix.renderer.content == "lines" and set(mix.data.mix.ratios) == {"rendered", "real"}
    assert mix.data.train.sources.real.root.endswith("lines/sroie_train")
    assert mix.data.val.source.root.endswith("lines/sroie_val") and mix.data.val.part == "val"
