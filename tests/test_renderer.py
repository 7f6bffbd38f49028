"""The embedded synthetic word renderer, its shipped fonts and its word list."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import re
import string
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageFont

from conftest import PREPROCESS
from crnn_lit.config import compose_config
from crnn_lit.data.sources.renderer import (
    PRINTABLE_ASCII,
    RenderStyle,
    SyntheticWords,
    WordRenderer,
    discover_fonts,
    luma,
    missing_glyphs,
)
from crnn_lit.data.sources.renderer.backgrounds import background_field

ROOT = Path(__file__).resolve().parents[1]
WORDS = ROOT / "data" / "words" / "english.txt"
FONTS = ROOT / "data" / "fonts"
ALNUM = re.compile(r"[A-Za-z0-9]+")


def make(**kw) -> WordRenderer:
    """A renderer over the shipped assets; keyword arguments go, by name, to its style, to the input spec
    (height, channels, min/max width) or to WordRenderer."""
    knobs = {f.name for f in fields(RenderStyle)}
    style = {k: kw.pop(k) for k in list(kw) if k in knobs}
    spec = PREPROCESS.replace(**{k: kw.pop(k) for k in list(kw) if k in PREPROCESS.__dataclass_fields__})
    return WordRenderer(str(WORDS), str(FONTS), spec, style=style, **kw)


@pytest.fixture(scope="module")
def renderer() -> WordRenderer:
    return make()


# --------------------------------------------------------------------------------------------------
# determinism


def test_same_seed_and_index_give_identical_samples(renderer):
    other = make()  # fresh caches, indices visited in another order
    for i in [123456789, 42, 7, 0, 10**12, 3]:
        a, b = renderer.render(i), other.render(i)
        assert a.label == b.label
        assert a.key == b.key == f"render:0:{i}"
        assert a.image.shape == b.image.shape
        assert np.array_equal(a.image, b.image)
    again = renderer.render(42)
    assert np.array_equal(again.image, other.render(42).image)


def test_different_index_or_seed_gives_different_samples(renderer):
    images = [renderer.render(i).image for i in range(8)]
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            a, b = images[i], images[j]
            assert a.shape != b.shape or not np.array_equal(a, b)
    seeded = make(seed=1)
    same = sum(
        seeded.render(i).label == renderer.render(i).label
        and np.array_equal(seeded.render(i).image, renderer.render(i).image)
        for i in range(8)
    )
    assert same == 0
    assert seeded.render(3).key == "render:1:3"


def _digest(indices) -> str:
    r = make(channels=3, seed=5)
    h = hashlib.sha256()
    for i in indices:
        s = r.render(i)
        h.update(s.label.encode())
        h.update(str(s.image.shape).encode())
        h.update(s.image.tobytes())
    return h.hexdigest()


def test_identical_in_another_process():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from test_renderer import _digest; print(_digest([5, 0, 99, 2**40]))"
    )
    env = dict(os.environ, PYTHONHASHSEED="12345", OMP_NUM_THREADS="1")
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=str(ROOT),
    )
    assert out.stdout.strip().splitlines()[-1] == _digest([5, 0, 99, 2**40])


def test_pickled_renderer_renders_the_same(renderer):
    clone = pickle.loads(pickle.dumps(renderer))
    for i in (0, 17):
        assert np.array_equal(clone.render(i).image, renderer.render(i).image)


# --------------------------------------------------------------------------------------------------
# image format and width


def test_gray_output_format(renderer):
    for i in range(20):
        img = renderer.render(i).image
        assert img.dtype == np.uint8
        assert img.ndim == 2 and img.shape[0] == 32
        assert img.flags["C_CONTIGUOUS"]
        assert int(img.max()) - int(img.min()) > 60  # something is drawn


def test_rgb_output_and_other_height():
    rgb = make(channels=3)
    gray = make(channels=1)
    for i in range(10):
        a, b = rgb.render(i), gray.render(i)
        assert a.image.dtype == np.uint8 and a.image.shape == (32, b.image.shape[1], 3)
        assert a.label == b.label
    colourful = sum(
        int(np.abs(np.diff(rgb.render(i).image.astype(int), axis=2)).max()) > 10 for i in range(10)
    )
    assert colourful >= 3
    tall = make(height=48)
    assert tall.render(0).image.shape[0] == 48
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        make(channels=2)


def test_width_matches_rendered_width(renderer):
    for i in range(1000, 1050):
        assert abs(renderer.width(i) - renderer.render(i).image.shape[1]) <= 4
        assert renderer.width(i) == renderer.render(i).image.shape[1]  # exact by construction


def test_width_clamping():
    narrow = make(max_width=60)
    wide = make(min_width=150)
    for i in range(30):
        w = narrow.render(i).image.shape[1]
        assert w <= 60 and w == narrow.width(i)
        w = wide.render(i).image.shape[1]
        assert w >= 150 and w == wide.width(i)
    tiny = make(min_width=16)
    assert min(tiny.width(i) for i in range(400)) >= 16


def test_longer_words_give_wider_images(renderer):
    lengths, widths = [], []
    for i in range(600):
        p = renderer.plan(i)
        lengths.append(len(p.layout.label))
        widths.append(p.layout.width)
    lengths, widths = np.array(lengths), np.array(widths)
    assert widths[lengths >= 10].mean() > 1.5 * widths[lengths <= 5].mean()
    assert np.corrcoef(lengths, widths)[0, 1] > 0.7


# --------------------------------------------------------------------------------------------------
# labels


def test_labels_are_ascii_alnum_and_bounded(renderer):
    labels = [renderer.plan(i).layout.label for i in range(2000)]
    assert all(ALNUM.fullmatch(label) for label in labels)
    assert max(map(len, labels)) <= renderer.max_word_len
    assert any(label.isdigit() for label in labels)  # p_digits
    assert any(label.isupper() and len(label) > 3 for label in labels)  # p_upper
    assert len(set(labels)) > 1800
    for i in range(5):
        assert renderer.render(i).label == renderer.label(i) == renderer.plan(i).layout.label


def test_max_word_len_and_charset():
    short = make(max_word_len=5, random_len=(1, 9))
    assert max(len(short.plan(i).layout.label) for i in range(500)) <= 5
    lower = (
        (ROOT / "data" / "charsets" / "lowercase36.txt").read_text().strip()
        if (ROOT / "data" / "charsets" / "lowercase36.txt").exists()
        else string.digits + string.ascii_lowercase
    )
    r = make(charset_chars=lower, p_digits=0.5)
    allowed = set(lower)
    assert all(set(r.plan(i).layout.label) <= allowed for i in range(500))


def test_contrast_is_guaranteed(renderer):
    for i in range(500):
        p = renderer.plan(i)
        assert abs(luma(p.fg) - luma(p.bg)) >= renderer.style.min_contrast + p.bg_amp - 1e-9
        for col in (p.border_color, p.shadow_color):
            assert abs(luma(col) - luma(p.fg)) >= renderer.style.min_contrast - 1e-9
    clean = make(p_noise=0.0, p_blur=0.0, p_gradient=0.0, p_texture=0.0, p_border=0.0, p_shadow=0.0)
    for i in range(20):
        img = clean.render(i).image.astype(int)
        assert img.max() - img.min() >= 0.35 * 255 - 2


# --------------------------------------------------------------------------------------------------
# dataset


def test_synthetic_words_dataset(renderer):
    ds = SyntheticWords(renderer, length=100)
    assert len(ds) == 100
    s = ds[7]
    assert s.label == renderer.render(7).label and np.array_equal(s.image, renderer.render(7).image)
    assert ds.width(7) == s.image.shape[1]
    assert ds[-1].key == "render:0:99"
    with pytest.raises(IndexError):
        ds[100]


# --------------------------------------------------------------------------------------------------
# shipped data


def test_every_shipped_font_has_all_printable_ascii():
    fonts = discover_fonts(FONTS)
    assert 100 <= len(fonts) <= 250  # the "≥ 100 faces"
    assert sum(f.stat().st_size for f in fonts) < 40 * 2**20  # keep the repository light
    readme = (FONTS / "README.md").read_text()
    assert len(PRINTABLE_ASCII) == 94
    for path in fonts:
        assert missing_glyphs(path) == "", path.name
        font = ImageFont.truetype(str(path), 24)
        for ch in PRINTABLE_ASCII:
            left, top, right, bottom = font.getbbox(ch)
            assert right > left and bottom > top, (path.name, ch)
        assert (path.parent / "LICENSE").is_file(), path
        assert path.relative_to(FONTS).as_posix() in readme, path


def test_word_list_properties():
    words = WORDS.read_text(encoding="utf-8").splitlines()
    assert len(words) > 50_000
    assert all(re.fullmatch(r"[A-Za-z]{1,20}", w) for w in words)
    lowered = [w.lower() for w in words]
    assert len(set(lowered)) == len(words)
    assert "a" in words and "the" in words and "A" not in words
    assert (WORDS.parent / "LICENSE").is_file()


# --------------------------------------------------------------------------------------------------
# realism (issue #11): the style crnn_lit trains with, from conf/renderer/default.yaml


@pytest.fixture(scope="module")
def realistic() -> WordRenderer:
    return WordRenderer.from_spec(compose_config(["renderer=default"]).renderer, PREPROCESS)


def test_style_config_becomes_a_style_and_rejects_unknown_knobs(realistic):
    st = realistic.style
    assert isinstance(st, RenderStyle) and st.margin_x == (0.0, 0.12) and st.p_photo == 0.35
    assert len(realistic.textures) == 11
    with pytest.raises(TypeError, match="p_unknown"):
        make(p_unknown=0.5)
    with pytest.raises(ValueError, match="min_contrast"):
        make(min_contrast=0.5, photo_amplitude=0.5)


def test_every_effect_is_deterministic_per_seed_and_index(realistic):
    realistic.render(0)
    other = pickle.loads(pickle.dumps(realistic))
    assert len(realistic.planner.faces) >= 1 and len(other.planner.faces) == 0  # the glyph cache ships empty
    assert other.planner.faces is other.painter.faces  # and stays one cache, planner's and painter's
    kinds = set()
    for i in [9, 3, 10**9, 0, 77, 5, 123, 31, 64, 12]:
        p = realistic.plan(i)
        kinds.add(p.bg_kind)
        a, b = realistic.render(i), other.render(i)
        assert a.label == b.label and np.array_equal(a.image, b.image)
        assert a.image.shape == (32, realistic.width(i))
    assert "photo" in kinds


def test_planner_knows_widths_and_labels_without_drawing_a_glyph():
    """Width bucketing asks the planner about every index: its answer is the drawn image's, from metrics alone."""
    r = WordRenderer.from_spec(compose_config(["renderer=default"]).renderer, PREPROCESS, seed=3)
    planned = [(r.planner.width(i), r.planner.label(i)) for i in range(300)]
    faces = list(r.planner.faces._cache.values())
    assert len(faces) > 50 and not any(face.bitmaps for face in faces)  # faces measured, no glyph rasterised
    assert len({w for w, _ in planned}) > 50 and min(w for w, _ in planned) >= PREPROCESS.min_width
    assert [(s.image.shape[1], s.label) for s in map(r.render, range(300))] == planned
    assert all(face.bitmaps for face in faces)  # the painter drew from the planner's cache


def test_effects_are_drawn_at_their_rates(realistic):
    plans = [realistic.plan(i) for i in range(1500)]
    def rate(hit):
        return sum(map(hit, plans)) / len(plans)
    assert 0.28 < rate(lambda p: p.bg_kind == "photo") < 0.42
    assert 0.18 < rate(lambda p: p.lowres < 1.0) < 0.32
    assert 0.18 < rate(lambda p: p.jpeg > 0) < 0.32
    assert 0.24 < rate(lambda p: p.layout.bold > 0) < 0.36
    assert 0.10 < rate(lambda p: p.edge >= 0) < 0.20
    # case as on signs: about 45 % of dictionary words in capitals
    words = [p.layout.label for p in plans if p.layout.label.isalpha() and len(p.layout.label) > 1]
    assert 0.38 < sum(w.isupper() for w in words) / len(words) < 0.52
    assert any(p.layout.neighbours for p in plans)


def test_background_stays_within_its_amplitude(realistic):
    """Photos, gradients, noise textures and border steps never eat into the text's contrast margin."""
    for i in range(300):
        p = realistic.plan(i)
        rng = np.random.default_rng(i)
        field = background_field(p, 32, p.layout.width, realistic.textures, lambda rng=rng: rng)
        if field is not None:
            assert np.abs(field).max() <= p.bg_amp * 255.0 + 1e-3, (i, p.bg_kind)
        assert abs(luma(p.fg) - luma(p.bg)) >= realistic.style.min_contrast + p.bg_amp - 1e-9


def test_tight_crops_put_ink_at_both_edges():
    """margin 0, no rotation: ink within 3 px of every edge (PIL's glyph boxes are 1-2 canvas px loose)."""
    tight = make(margin_x=(0.0, 0.0), margin_y=(0.0, 0.0), p_tight_y=1.0, max_rotation=0.0, max_shear=0.0,
                 p_perspective=0.0, p_gradient=0.0, p_texture=0.0, p_blur=0.0, p_noise=0.0, p_border=0.0,
                 p_shadow=0.0, min_width=1)
    touching = 0
    for i in range(40):
        p = tight.plan(i)
        img = tight.render(i).image.astype(int)
        bg = round(luma(p.bg) * 255)
        ink = np.abs(img - bg) > 40
        cols, rows = np.nonzero(ink.any(0))[0], np.nonzero(ink.any(1))[0]
        touching += bool(cols[0] <= 3 and cols[-1] >= img.shape[1] - 4 and rows[0] <= 3 and rows[-1] >= 28)
    assert touching >= 36


def test_neighbours_never_cover_the_word():
    """Other text stays outside the word: its slivers may enter the margins, never the word's own ink."""
    base = {"p_blur": 0.0, "p_noise": 0.0, "p_border": 0.0, "p_shadow": 0.0, "margin_x": (0.0, 0.5),
            "margin_y": (0.0, 0.3)}
    with_n, without = make(p_neighbours=1.0, **base), make(p_neighbours=0.0, **base)
    changed = 0
    for i in range(60):
        p = with_n.plan(i)
        q = dataclasses.replace(p, layout=dataclasses.replace(p.layout, neighbours=[]))
        alone, _, _ = with_n.painter.text_layer(q.layout)
        both, dx, dy = with_n.painter.text_layer(p.layout)
        # the word's pixels in the larger canvas, where both layers align
        region = both[-dy : -dy + alone.shape[0], -dx : -dx + alone.shape[1]]
        assert np.array_equal(np.maximum(region, alone), region)
        overlap = (alone > 0) & (region != alone)
        assert overlap.sum() <= 0.01 * (alone > 0).sum(), i
        if p.layout.neighbours:
            changed += not np.array_equal(with_n.painter.draw(p, i), with_n.painter.draw(q, i))
        assert without.plan(i).layout.neighbours == []
    assert changed >= 20


def test_shipped_textures_are_licensed_photos():
    tex = ROOT / "data" / "textures"
    readme = (tex / "README.md").read_text()
    files = sorted(tex.glob("*.jpg"))
    assert len(files) == 11 and sum(f.stat().st_size for f in files) < 1 * 2**20
    for f in files:
        row = next(line for line in readme.splitlines() if f"`{f.name}`" in line)
        assert "CC0" in row or "public domain" in row or "no known copyright" in row, row


def test_font_weights_steer_the_face_draw():
    fonts = discover_fonts(FONTS)
    display = {i for i, f in enumerate(fonts) if f.relative_to(FONTS).parts[0] == "aenigma"}
    assert 10 < len(display) < 40
    def share(r):
        return sum(r.plan(i).layout.font in display for i in range(600)) / 600
    assert share(make(font_weights={"aenigma/*": 0.0})) == 0.0
    uniform = share(make())
    assert abs(uniform - len(display) / len(fonts)) < 0.05
    assert share(make(font_weights={"aenigma/*": 5.0})) > 2.5 * uniform
    with pytest.raises(ValueError, match="positive weight"):
        make(font_weights={"*": 0})


def test_frequent_words_follow_their_tempered_frequency():
    freq = ROOT / "data" / "words" / "frequency" / "english_frequency.tsv"
    lines = freq.read_text().splitlines()
    assert len(lines) == 60_000 and lines[0] == "the\t7.73"
    r = make(frequency_file=str(freq), p_frequent=1.0, p_digits=0.0, p_upper=0.0, p_capitalized=0.0)
    labels = [r.label(i) for i in range(4000)]
    top = {line.split("\t")[0] for line in lines[:100]}
    # power 0.5: the 100 most frequent words hold 5.4 % of the mass (uniform: 0.17 %, power 1: 48 %)
    assert 0.04 < sum(w in top for w in labels) / len(labels) < 0.07
    flat = make(frequency_file=str(freq), p_frequent=1.0, frequency_power=0.0, p_digits=0.0)
    assert sum(flat.label(i).lower() in top for i in range(4000)) < 40
    assert all(r.label(i) == make(frequency_file=str(freq), p_frequent=1.0, p_digits=0.0, p_upper=0.0,
                                  p_capitalized=0.0).label(i) for i in range(50))
    upper = make(frequency_file=str(freq), charset_chars=string.ascii_uppercase)  # words fitted to the charset
    assert upper.planner._frequent[:3] == ["THE", "TO", "AND"]


def test_symbolic_text_is_drawn_and_its_label_follows_the_charset_policy():
    """p_symbols: prices, percentages, times, dates and punctuated words, labelled as drawn; the lowercase
    charset's `oov: remove` then keeps their letters and digits, as it does for real crops."""
    from crnn_lit.charset import Charset

    r = make(p_symbols=1.0, p_digits=0.0, max_word_len=12)
    labels = [r.label(i) for i in range(600)]
    assert all(len(label) <= 12 for label in labels)
    assert sum(not label.isalnum() for label in labels) > 0.9 * len(labels)
    for pattern in (r"[$#]?\d{1,3}[.,]\d\d", r"[-+]?\d{1,2}%", r"\d{1,2}:\d\d(am|pm|AM|PM)?", r"\d\d[/.-]\d\d(/20\d\d)?",
                    r"\(\w+\)", r"\w+'s"):
        assert any(re.fullmatch(pattern, label) for label in labels), pattern
    assert [r.render(i).label for i in range(20)] == labels[:20] == [make(p_symbols=1.0, p_digits=0.0,
                                                                            max_word_len=12).label(i) for i in range(20)]
    lowercase = Charset.from_file(ROOT / "data/charsets/lowercase36.txt", oov="remove")
    price = next(label for label in labels if re.fullmatch(r"\$\d+\.\d\d", label))
    assert lowercase.normalize(price) == price[1:].replace(".", "")
    alnum = make(p_symbols=1.0, charset_chars=string.ascii_letters + string.digits)  # a charset without symbols
    assert all(alnum.label(i).isalnum() for i in range(300))


# --------------------------------------------------------------------------------------------------
# camera and light, text on an arc (levers off by default)

CLEAN = {"p_gradient": 0.0, "p_texture": 0.0, "p_blur": 0.0, "p_noise": 0.0, "p_border": 0.0, "p_shadow": 0.0,
         "max_rotation": 0.0, "max_shear": 0.0, "p_perspective": 0.0}


def test_curve_shading_and_motion_blur_are_deterministic_and_drawn_at_their_rates():
    r = make(p_curve=0.5, p_shading=0.5, p_motion_blur=0.5)
    other = pickle.loads(pickle.dumps(r))
    plans = [r.plan(i) for i in range(600)]
    for i in (0, 7, 10**9):
        a, b = r.render(i), other.render(i)
        assert a.label == b.label and np.array_equal(a.image, b.image)
    curved = [p for p in plans if any(p.layout.ys)]
    assert 0.35 < len(curved) / len(plans) < 0.55  # ~0.5, less the words too short or flat to bend
    assert 0.43 < sum(p.shade[0] > 0 for p in plans) / len(plans) < 0.57
    assert 0.43 < sum(p.motion[0] > 0 for p in plans) / len(plans) < 0.57
    assert all(0.2 <= p.shade[0] <= 0.5 and 2.0 <= p.motion[0] <= 5.0 for p in plans if p.shade[0] and p.motion[0])
    off = make()
    assert all(not any(off.plan(i).layout.ys) and off.plan(i).shade[0] == 0 == off.plan(i).motion[0] for i in range(50))


def mean_row(mask: np.ndarray) -> float:
    """Mean row index of a mask's set pixels."""
    return float((np.arange(mask.shape[0])[:, None] * mask).sum() / max(mask.sum(), 1))


def test_curved_text_bends_and_stays_inside_the_crop():
    """The glyphs at the ends sit lower (bend > 0) or higher than mid-word, and the crop still holds them all."""
    r = make(p_curve=1.0, max_curve=0.4, margin_x=(0.15, 0.15), margin_y=(0.15, 0.15), p_tight_y=1.0, p_digits=0.0,
             min_width=1, **CLEAN)
    checked = 0
    for i in range(80):
        p = r.plan(i)
        img = r.render(i).image.astype(int)
        ink = np.abs(img - round(luma(p.bg) * 255)) > 60
        assert not (ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any()), i
        ys, size = p.layout.ys, p.layout.size
        if len(ys) >= 5 and abs(ys[0]) >= 0.25 * size:
            w = img.shape[1]
            ends, middle = ink[:, np.r_[0 : w // 5, w - w // 5 : w]], ink[:, 2 * w // 5 : 3 * w // 5]
            assert np.sign(mean_row(ends) - mean_row(middle)) == np.sign(ys[0]), (i, p.layout.label)
            checked += 1
    assert checked >= 15


def test_shading_only_darkens_within_its_depth():
    from crnn_lit.data.sources.renderer.degrade import shade_gain

    sharp = shade_gain((0.4, 0.0, 0.5, 0.02), 32, 100)  # a cast shadow's edge down the middle
    assert sharp.min() >= 0.6 - 1e-6 and sharp.max() <= 1.0 + 1e-6
    assert np.allclose(sharp[:, :45], 1.0, atol=0.01) and np.allclose(sharp[:, 55:], 0.6, atol=0.01)
    soft = shade_gain((0.4, 0.0, 0.5, 0.5), 32, 100)  # a fall-off across the word
    assert np.all(np.diff(soft[0]) < 0) and 0.9 < soft[0, 0] < 0.99 and 0.61 < soft[0, -1] < 0.7  # no plateau
    r = make(p_shading=1.0, p_jpeg=0.0, p_lowres=0.0, **CLEAN)
    for i in range(30):
        p = r.plan(i)
        lit = r.painter.draw(dataclasses.replace(p, shade=(0.0, 0.0, 0.0, 0.0)), i).astype(int)
        shaded = r.painter.draw(p, i).astype(int)
        assert np.all(shaded <= lit + 1) and (shaded < lit - 10).any(), i


def test_motion_blur_kernel_is_a_normalised_line():
    from crnn_lit.data.sources.renderer.degrade import motion_kernel

    horizontal, vertical = motion_kernel(4.0, 0.0), motion_kernel(4.0, np.pi / 2)
    for k in (horizontal, vertical, motion_kernel(3.3, 1.0)):
        assert abs(k.sum() - 1.0) < 1e-6 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    mid = horizontal.shape[0] // 2
    assert abs(horizontal[mid].sum() - 1.0) < 1e-6 and (horizontal[mid] > 0.1).sum() >= 4
    assert np.allclose(vertical, horizontal.T, atol=1e-6)
    diagonal = motion_kernel(4.0, np.pi / 4)
    assert np.allclose(diagonal, diagonal.T, atol=1e-6) and np.trace(diagonal) > 0.5


# --------------------------------------------------------------------------------------------------
# colours measured on real crops (data/colors)

PALETTE = ROOT / "data" / "colors" / "real_train.tsv"


def test_crop_colours_finds_text_and_background_of_either_polarity():
    from PIL import Image, ImageDraw

    from crnn_lit.data.sources.renderer.palette import crop_colours

    font = ImageFont.truetype(str(discover_fonts(FONTS)[0]), 28)
    for text_rgb, bg_rgb in (((20, 30, 120), (230, 220, 200)), ((250, 250, 240), (120, 30, 20))):
        img = Image.new("RGB", (120, 36), bg_rgb)
        ImageDraw.Draw(img).text((6, 2), "Shop", fill=text_rgb, font=font)
        fg, bg = crop_colours(np.asarray(img))
        assert np.allclose(np.array(fg) * 255, text_rgb, atol=12) and np.allclose(np.array(bg) * 255, bg_rgb, atol=2)
    assert crop_colours(np.full((32, 80, 3), 128, np.uint8)) is None  # nothing to split
    halves = np.zeros((32, 80, 3), np.uint8)
    halves[:, 40:] = 255  # left black, right white: the ring is split, no side is the background
    assert crop_colours(halves) is None


def test_palette_pairs_keep_hue_and_polarity_and_reach_the_contrast_gap():
    import random

    from crnn_lit.data.sources.renderer.palette import draw_pair, load_palette
    from crnn_lit.data.sources.renderer.plan import with_luma

    red = with_luma((0.8, 0.2, 0.2), 0.5)
    assert abs(luma(red) - 0.5) < 1e-9 and red[0] > red[1] == red[2]
    pairs, cdf = load_palette(PALETTE)
    assert 50 <= len(pairs) <= 128 and cdf[-1] == pytest.approx(1.0)
    assert "training-side" in PALETTE.read_text().splitlines()[1]
    r = random.Random(0)
    for gap in (0.25, 0.6):
        for _ in range(300):
            fg, bg = draw_pair(r, pairs, cdf, gap)
            assert abs(luma(fg) - luma(bg)) >= gap - 1e-9
    # a low-contrast pair moves apart on its own side: dark text stays darker
    fg, bg = draw_pair(r, [((0.30, 0.29, 0.28), (0.46, 0.45, 0.44))], [1.0], 0.4, jitter=0.0)
    assert luma(bg) - luma(fg) == pytest.approx(0.4) and luma(fg) < 0.3


def test_real_colours_lever_draws_from_the_palette():
    from crnn_lit.data.sources.renderer.palette import load_palette

    r = make(p_real_colors=1.0, palette_file=str(PALETTE))
    pairs, cdf = load_palette(PALETTE)
    shares = np.diff([0.0, *cdf])
    palette_dark = sum(s for (fg, bg), s in zip(pairs, shares) if luma(fg) < luma(bg))
    plans = [r.plan(i) for i in range(600)]
    dark = np.mean([luma(p.fg) < luma(p.bg) for p in plans])
    assert abs(dark - palette_dark) < 0.07 and abs(dark - r.style.p_dark_text) > 0.1  # the palette's polarity
    assert all(abs(luma(p.fg) - luma(p.bg)) >= r.style.min_contrast + p.bg_amp - 1e-9 for p in plans)
    a, b = r.render(5), pickle.loads(pickle.dumps(r)).render(5)
    assert np.array_equal(a.image, b.image)
    with pytest.raises(ValueError, match="palette_file"):
        make(p_real_colors=0.5)
