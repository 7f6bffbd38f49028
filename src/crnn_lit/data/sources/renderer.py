"""Embedded synthetic word renderer: the default, download-free training data.

A :class:`WordRenderer` turns ``(seed, index)`` into a word image and its label, deterministically and
without any shared state: the same pair gives the same pixels in any process, in any order. Everything
random about a sample (word, font, size, spacing, colours, geometry, effects) is decided by
:meth:`WordRenderer.plan`, which is cheap (no rasterising), so :meth:`WordRenderer.width` can report the
exact final width of any index for width-bucketed batching. :meth:`WordRenderer.render` then draws the
plan: cached glyph bitmaps are pasted onto a small canvas, one perspective warp maps that canvas straight
to the output size (height-normalised, with rotation/shear/perspective folded in), and the result is
composited over a procedural background, optionally blurred and noised.

Contrast is guaranteed: the luminance of the text colour differs from every background pixel (before
noise) by at least ``min_contrast`` (0..1 scale), and borders/shadows always sit on the background's side.
"""

from __future__ import annotations

import math
import random
import struct
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from crnn_lit.data.sample import Sample

PRINTABLE_ASCII = "".join(chr(c) for c in range(33, 127))  # the 94 printable, non-space ASCII characters
DIGITS = "0123456789"
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
FONT_SUFFIXES = (".ttf", ".otf")
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's "L" conversion
_MASK64 = (1 << 64) - 1
_PAD = 4  # blank pixels around the glyph canvas (room for borders and shadows)


# --------------------------------------------------------------------------------------------------
# font helpers


def discover_fonts(fonts_dir: str | Path) -> list[Path]:
    """All .ttf/.otf files under ``fonts_dir`` (recursive), in a stable (sorted) order."""
    root = Path(fonts_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"fonts_dir {str(root)!r} is not a directory")
    return sorted(
        (p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FONT_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )


def font_codepoints(path: str | Path) -> set[int]:
    """Code points mapped to a real glyph by the font's Unicode ``cmap`` subtables (formats 4 and 12).

    A tiny sfnt reader, so that glyph coverage can be checked without extra dependencies.
    """
    data = Path(path).read_bytes()
    num_tables = struct.unpack_from(">H", data, 4)[0]
    cmap = None
    for i in range(num_tables):
        tag, _, off, _ = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if tag == b"cmap":
            cmap = off
    if cmap is None:
        raise ValueError(f"{path}: no cmap table")
    points: set[int] = set()
    n_sub = struct.unpack_from(">H", data, cmap + 2)[0]
    for i in range(n_sub):
        platform, encoding, sub_off = struct.unpack_from(">HHI", data, cmap + 4 + 8 * i)
        if not (platform == 0 or (platform == 3 and encoding in (1, 10))):
            continue
        sub = cmap + sub_off
        fmt = struct.unpack_from(">H", data, sub)[0]
        if fmt == 4:
            seg_count = struct.unpack_from(">H", data, sub + 6)[0] // 2
            ends = struct.unpack_from(f">{seg_count}H", data, sub + 14)
            starts_at = sub + 16 + 2 * seg_count
            starts = struct.unpack_from(f">{seg_count}H", data, starts_at)
            deltas = struct.unpack_from(f">{seg_count}h", data, starts_at + 2 * seg_count)
            ro_at = starts_at + 4 * seg_count
            range_offsets = struct.unpack_from(f">{seg_count}H", data, ro_at)
            for s in range(seg_count):
                start, end, delta, ro = starts[s], ends[s], deltas[s], range_offsets[s]
                if start == 0xFFFF:
                    continue
                for c in range(start, end + 1):
                    if ro == 0:
                        gid = (c + delta) & 0xFFFF
                    else:
                        gid = struct.unpack_from(">H", data, ro_at + 2 * s + ro + 2 * (c - start))[0]
                        gid = (gid + delta) & 0xFFFF if gid else 0
                    if gid:
                        points.add(c)
        elif fmt == 12:
            n_groups = struct.unpack_from(">I", data, sub + 12)[0]
            for g in range(n_groups):
                start, end, glyph = struct.unpack_from(">III", data, sub + 16 + 12 * g)
                for c in range(start, end + 1):
                    if glyph + (c - start):
                        points.add(c)
    return points


def missing_glyphs(path: str | Path, chars: str = PRINTABLE_ASCII) -> str:
    """The characters of ``chars`` that the font at ``path`` has no glyph for ("" when complete)."""
    points = font_codepoints(path)
    return "".join(ch for ch in chars if ord(ch) not in points)


class _FontAtSize:
    """One face at one pixel size: glyph metrics always, glyph bitmaps on first use."""

    __slots__ = ("bitmaps", "bottom", "font", "metrics", "top")

    def __init__(self, path: Path, size: int):
        self.font = ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)
        self.metrics: dict[str, tuple[float, int, int, int, int]] = {}
        self.bitmaps: dict[str, np.ndarray] = {}
        # Font-level vertical extent (relative to the baseline) so that all words of a face share one
        # scale: "ace" is not blown up to the height of "Hg".
        tops, bottoms = [], []
        for ch in LETTERS + DIGITS:
            _, _, t, _, b = self.metric(ch)
            tops.append(t)
            bottoms.append(b)
        self.top = min(tops)
        self.bottom = max(bottoms)

    def metric(self, ch: str) -> tuple[float, int, int, int, int]:
        """(advance, left, top, right, bottom) of ``ch`` with the pen at the baseline origin."""
        m = self.metrics.get(ch)
        if m is None:
            left, top, right, bottom = self.font.getbbox(ch, anchor="ls")
            m = (self.font.getlength(ch), left, top, right, bottom)
            self.metrics[ch] = m
        return m

    def bitmap(self, ch: str) -> np.ndarray:
        """Anti-aliased coverage of ``ch``, exactly its bbox from :meth:`metric` (uint8)."""
        bmp = self.bitmaps.get(ch)
        if bmp is None:
            _, left, top, right, bottom = self.metric(ch)
            img = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), 0)
            ImageDraw.Draw(img).text((-left, -top), ch, font=self.font, fill=255, anchor="ls")
            bmp = np.asarray(img, dtype=np.uint8)
            self.bitmaps[ch] = bmp
        return bmp


# --------------------------------------------------------------------------------------------------
# plan


@dataclass(slots=True)
class RenderPlan:
    """Every decision about one sample; drawing it needs no further randomness except pixel noise."""

    label: str
    font: int  # index into WordRenderer.fonts
    size: int  # font size in px
    xs: list[int]  # pen x of each character (glyph-canvas coordinates, before _PAD)
    ink: tuple[int, int, int, int]  # x0, y0 (=font top, relative to baseline), x1, y1 of the text box
    matrix: tuple[float, ...]  # 3x3 row-major homography: glyph canvas -> output pixels (edge coords)
    width: int  # final image width
    fg: tuple[float, float, float]  # text colour, RGB 0..1
    bg: tuple[float, float, float]  # background base colour, RGB 0..1
    bg_kind: str  # "flat" | "gradient" | "texture" | "photo"
    bg_amp: float  # max luminance deviation of the background from its base colour
    bg_angle: float  # gradient direction (radians)
    photo: tuple[int, float, float, float, bool]  # photo background: texture index, x, y (0..1), scale, mirrored
    edge: float  # a straight background step (sign border) at this height (0..1 of H); -1: none
    neighbours: list[tuple[str, int, int]]  # (text, x, baseline y) of other text cut by the crop (canvas px)
    bold: int  # stroke thickening in canvas px (0: none)
    border: int  # outline thickness in canvas px (0: none)
    border_color: tuple[float, float, float]
    shadow: tuple[int, int]  # shadow offset in canvas px ((0, 0): none)
    shadow_color: tuple[float, float, float]
    blur: float  # Gaussian blur sigma in output px (0: none)
    noise: float  # Gaussian noise sigma in 0..255 units (0: none)
    lowres: float  # down-sampling factor before upsampling back (1: none)
    jpeg: int  # JPEG quality (0: none)


def _uniform(r: random.Random, lo_hi: tuple[float, float]) -> float:
    lo, hi = lo_hi
    return lo + (hi - lo) * r.random()


def _below(r: random.Random, n: int) -> int:
    """Uniform integer in [0, n) from ``random()`` only (its output is stable across Python versions)."""
    return min(int(r.random() * n), n - 1)


def _color_with_luma(r: random.Random, luma: float, saturation: float) -> tuple[float, float, float]:
    """A random RGB colour with exactly the given luminance and a random hue/chroma up to ``saturation``."""
    d = [r.random() - 0.5 for _ in range(3)]
    shift = sum(w * x for w, x in zip(_LUMA, d))
    d = [x - shift for x in d]  # chroma direction: adding it leaves the luminance unchanged
    limit = math.inf
    for x in d:  # largest step keeping every channel in [0, 1]
        if x > 1e-9:
            limit = min(limit, (1.0 - luma) / x)
        elif x < -1e-9:
            limit = min(limit, luma / -x)
    step = 0.0 if limit == math.inf else limit * saturation * r.random()
    return tuple(min(max(luma + step * x, 0.0), 1.0) for x in d)  # type: ignore[return-value]


@dataclass(frozen=True)
class RenderStyle:
    """How rendered words look: every probability and range the renderer draws from (no paths, no sizes).

    The defaults are the renderer as it was before the MJSynth-style effects (``conf/renderer/v1.yaml``);
    ``conf/renderer/default.yaml`` holds the style crnn_lit trains with.

    Attributes:
    p_upper: probability of rendering a dictionary word in UPPER CASE.
    p_capitalized: probability of Capitalizing a lowercase dictionary word.
    p_digits: probability of a random string (digits only or mixed letters/digits) instead of a word.
    random_len: (min, max) length of random strings.
    font_size: (min, max) font size in px at which glyphs are rasterised (before height normalisation).
    p_spacing: probability of non-default letter spacing.
    char_spacing: (min, max) extra letter spacing as a fraction of the font size, when applied.
    margin_x: (min, max) horizontal margin on each side, fraction of the font size.
    margin_y: (min, max) vertical margin above and below, fraction of the font size.
    p_dark_text: probability of dark text on a lighter background (else light on darker).
    min_contrast: minimum luminance difference (0..1) between text and any background pixel.
    saturation: max colour saturation (0 = gray only, 1 = as colourful as the luminance allows).
    p_gradient: probability of a linear-gradient background.
    p_texture: probability of a smooth procedural noise texture background (else flat colour).
    bg_amplitude: max luminance deviation of gradient/texture backgrounds around their base colour.
    p_border: probability of an outline around the glyphs.
    p_shadow: probability of a drop shadow.
    max_rotation: max absolute rotation in degrees.
    max_shear: max absolute horizontal shear (italic-like slant, dx/dy).
    p_perspective: probability of a perspective tilt.
    max_perspective: max relative size change across the word caused by perspective.
    p_blur: probability of a Gaussian blur.
    blur_sigma: (min, max) blur sigma in output pixels.
    p_noise: probability of additive Gaussian noise.
    noise_sigma: (min, max) noise standard deviation in 0..255 units.
    p_tight_y: probability that the crop fits the word's own ink vertically (as annotated boxes do)
            instead of the face's full ascender-to-descender extent.
    p_bold: probability of thickening the strokes by one canvas pixel (signage is mostly bold).
    p_neighbours: probability, per side, of other text cut by the crop: a sliver of a line above/below
            (never taller than that margin), a part of one glyph of a neighbouring word left/right (at most
            half a glyph, at least a word space away).
    p_photo: probability of a photo background (a random crop, scale and mirror of one texture).
    photo_amplitude: max luminance deviation of photo backgrounds around their base colour.
    p_edge: probability of a straight luminance step in the background near the top or bottom (a sign's
            border), within the background's amplitude.
    p_lowres: probability of down-sampling the finished image and sampling it back up (low resolution).
    lowres_scale: (min, max) down-sampling factor.
    p_jpeg: probability of JPEG compression artefacts.
    jpeg_quality: (min, max) JPEG quality.
    """

    p_upper: float = 0.1
    p_capitalized: float = 0.2
    p_digits: float = 0.1
    random_len: tuple[int, int] = (1, 10)
    font_size: tuple[int, int] = (18, 36)
    p_spacing: float = 0.3
    char_spacing: tuple[float, float] = (-0.02, 0.2)
    margin_x: tuple[float, float] = (0.03, 0.3)
    margin_y: tuple[float, float] = (0.02, 0.2)
    p_dark_text: float = 0.65
    min_contrast: float = 0.35
    saturation: float = 0.6
    p_gradient: float = 0.25
    p_texture: float = 0.25
    bg_amplitude: float = 0.12
    p_border: float = 0.07
    p_shadow: float = 0.07
    max_rotation: float = 2.0
    max_shear: float = 0.15
    p_perspective: float = 0.3
    max_perspective: float = 0.1
    p_blur: float = 0.25
    blur_sigma: tuple[float, float] = (0.3, 0.9)
    p_noise: float = 0.4
    noise_sigma: tuple[float, float] = (1.0, 6.0)
    p_tight_y: float = 0.0
    p_bold: float = 0.0
    p_neighbours: float = 0.0
    p_photo: float = 0.0
    photo_amplitude: float = 0.3
    p_edge: float = 0.0
    p_lowres: float = 0.0
    lowres_scale: tuple[float, float] = (0.35, 0.8)
    p_jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (20, 80)

    def __post_init__(self):
        for name, value in ((f.name, getattr(self, f.name)) for f in fields(self)):
            if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
                object.__setattr__(self, name, tuple(value))  # YAML lists -> tuples (hashable, picklable)
        if not 0.0 <= self.min_contrast + max(self.bg_amplitude, self.photo_amplitude) <= 0.95:
            raise ValueError("min_contrast + bg_amplitude (and + photo_amplitude) must stay below 0.95")


# --------------------------------------------------------------------------------------------------
# renderer


class WordRenderer:
    """Deterministic synthetic word images: ``render(index)`` is a pure function of ``(seed, index)``.

    Args:
        words_file: UTF-8 word list, one word per line (e.g. ``data/words/english.txt``).
        fonts_dir: directory searched recursively for .ttf/.otf faces (e.g. ``data/fonts``).
        height: output height in pixels; width follows the word's aspect ratio.
        channels: 1 -> HxW grayscale uint8, 3 -> HxWx3 RGB uint8.
        seed: stream id; different seeds give independent sample streams (e.g. train vs validation).
        min_width: narrower results are padded with background up to this width.
        max_width: wider results are squeezed horizontally to this width.
        max_word_len: labels are never longer than this.
        charset_chars: if given, labels only use these characters (words are lower/upper-cased to fit or
            skipped; random strings draw from its printable ASCII part).
        extra_words_files: more word lists (e.g. MJSynth's 90k vocabulary); missing files are skipped. ALL-CAPS
            entries are lower-cased, so that the style's case policy decides their case.
        textures_dir: folder of grayscale photographs used as backgrounds (``data/textures``); None: no photos.
        style: how the images look (:class:`RenderStyle`, or a mapping of its fields); None: its defaults.
    """

    def __init__(
        self,
        words_file: str,
        fonts_dir: str,
        height: int = 32,
        channels: int = 1,
        seed: int = 0,
        min_width: int = 16,
        max_width: int = 400,
        max_word_len: int = 23,
        charset_chars: str | None = None,
        extra_words_files: tuple[str, ...] = (),
        textures_dir: str | None = None,
        style: RenderStyle | Mapping | None = None,
    ):
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if not 0 < min_width <= max_width:
            raise ValueError(f"need 0 < min_width <= max_width, got {min_width}, {max_width}")
        self.style = style if isinstance(style, RenderStyle) else RenderStyle(**(style or {}))
        self.words_file = str(words_file)
        self.fonts_dir = str(fonts_dir)
        self.height = int(height)
        self.channels = int(channels)
        self.seed = int(seed)
        self.min_width = int(min_width)
        self.max_width = int(max_width)
        self.max_word_len = int(max_word_len)
        self.charset_chars = charset_chars
        hi = max(1, min(int(self.style.random_len[1]), self.max_word_len))
        self._random_len = (min(max(1, int(self.style.random_len[0])), hi), hi)  # never beyond max_word_len
        self.textures_dir = None if textures_dir is None else str(textures_dir)
        self.textures = load_textures(textures_dir) if textures_dir is not None else []
        if self.style.p_photo > 0 and not self.textures:
            raise FileNotFoundError(f"p_photo > 0 but no textures in {textures_dir!r}")

        self.fonts = discover_fonts(fonts_dir)
        if not self.fonts:
            raise FileNotFoundError(f"no .ttf/.otf fonts under {fonts_dir!r}")

        allowed = set(charset_chars) if charset_chars is not None else None
        self._allowed = allowed
        self.extra_words_files = tuple(str(f) for f in extra_words_files)
        lines = Path(words_file).read_text(encoding="utf-8").splitlines()
        for extra in self.extra_words_files:  # optional: e.g. a vocabulary under ../shared/data
            if Path(extra).is_file():
                lines += [w.lower() if w.isupper() else w for w in Path(extra).read_text("utf-8").splitlines()]
        words, seen = [], set()
        for line in lines:
            w = line.strip()
            if not w or len(w) > self.max_word_len or any(c.isspace() for c in w):
                continue
            if allowed is not None:
                w = next((f for f in (w, w.lower(), w.upper()) if set(f) <= allowed), "")
                if not w:
                    continue
            if w not in seen:
                seen.add(w)
                words.append(w)
        if not words:
            raise ValueError(f"no usable words in {words_file!r}")
        self.words = words

        if allowed is None:
            self._random_digits, self._random_mixed = DIGITS, DIGITS + LETTERS
        else:
            usable = "".join(sorted(c for c in allowed if c in PRINTABLE_ASCII))
            if not usable:
                raise ValueError("charset_chars has no printable ASCII character")
            digits = "".join(c for c in DIGITS if c in allowed)
            self._random_digits, self._random_mixed = digits or usable, usable

        self._cache: dict[tuple[int, int], _FontAtSize] = {}

    # ---- pickling (DataLoader workers with spawn): ship the config, rebuild caches lazily ----
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _face(self, font: int, size: int) -> _FontAtSize:
        key = (font, size)
        face = self._cache.get(key)
        if face is None:
            face = self._cache[key] = _FontAtSize(self.fonts[font], size)
        return face

    def _rng(self, index: int) -> random.Random:
        # An int seed is hashed the same way by every Python process and version (no PYTHONHASHSEED).
        return random.Random(((self.seed & _MASK64) << 64) | (index & _MASK64))

    # ---- label ----
    def _label(self, r: random.Random) -> str:
        if r.random() < self.style.p_digits:
            lo, hi = self._random_len
            n = lo + _below(r, hi - lo + 1)
            pool = self._random_digits if r.random() < 0.5 else self._random_mixed
            return "".join(pool[_below(r, len(pool))] for _ in range(n))
        w = self.words[_below(r, len(self.words))]
        u = r.random()
        if u < self.style.p_upper:
            cand = w.upper()
        elif u < self.style.p_upper + self.style.p_capitalized and w.islower():
            cand = w[0].upper() + w[1:]
        else:
            cand = w
        if self._allowed is not None and not set(cand) <= self._allowed:
            cand = w
        return cand

    # ---- plan ----
    def _layout(self, r: random.Random) -> Layout:
        """First part of a plan: label, font and geometry (everything the width depends on)."""
        rand = r.random
        label = self._label(r)
        font = _below(r, len(self.fonts))
        size = self.style.font_size[0] + _below(r, self.style.font_size[1] - self.style.font_size[0] + 1)
        face = self._face(font, size)

        spacing = size * _uniform(r, self.style.char_spacing) if rand() < self.style.p_spacing else 0.0
        xs, (x0, top, x1, bottom) = _pen_positions(face, label, spacing)
        if rand() >= self.style.p_tight_y:  # the face's full extent: all words of a face share one scale
            top, bottom = min(top, face.top), max(bottom, face.bottom)

        border = (1 + _below(r, 2)) if rand() < self.style.p_border else 0
        shadow = (1 + _below(r, 3), 1 + _below(r, 3)) if rand() < self.style.p_shadow else (0, 0)
        bold = 1 if rand() < self.style.p_bold else 0

        # geometry: text box centred at the origin -> shear, rotation, perspective (A = P @ R @ Sh)
        ext = max(border, shadow[0], shadow[1]) + bold
        hw, hh = (x1 - x0) / 2.0 + ext, (bottom - top) / 2.0 + ext
        shear = self.style.max_shear * (2.0 * rand() - 1.0)
        angle = math.radians(self.style.max_rotation * (2.0 * rand() - 1.0))
        px = py = 0.0
        if rand() < self.style.p_perspective:
            k = self.style.max_perspective * (2.0 * rand() - 1.0)  # relative size change from one end to the other
            if rand() < 0.75:
                px = k / (2.0 * hw)  # left/right ends of different height (seen from the side)
            else:
                py = 0.5 * k / (2.0 * hh)  # top/bottom of different width (seen from below/above)
        ca, sa = math.cos(angle), math.sin(angle)
        a00, a01 = ca, -ca * shear - sa
        a10, a11 = sa, -sa * shear + ca
        qx0 = qy0 = math.inf
        qx1 = qy1 = -math.inf
        for cx, cy in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)):
            X, Y = a00 * cx + a01 * cy, a10 * cx + a11 * cy
            w = 1.0 + px * X + py * Y
            X, Y = X / w, Y / w
            qx0, qx1, qy0, qy1 = min(qx0, X), max(qx1, X), min(qy0, Y), max(qy1, Y)

        # crop with random margins, then normalise the height
        ml, mr = size * _uniform(r, self.style.margin_x), size * _uniform(r, self.style.margin_x)
        mt, mb = size * _uniform(r, self.style.margin_y), size * _uniform(r, self.style.margin_y)
        neighbours = self._neighbours(r, face, label, xs, (x0 - ext, top - ext, x1 + ext, bottom + ext),
                                      (ml, mt, mr, mb))
        cx0, cy0 = qx0 - ml, qy0 - mt
        crop_w, crop_h = qx1 + mr - cx0, qy1 + mb - cy0
        sy = self.height / crop_h
        natural = crop_w * sy
        width = min(max(round(natural), self.min_width), self.max_width)
        if natural < width:  # pad with background (centred) rather than stretch
            extra = width / sy - crop_w
            cx0 -= extra / 2.0
            crop_w += extra
        sx = width / crop_w  # == sy up to rounding, smaller when squeezed to max_width

        # full map (edge coordinates): glyph canvas -> centred -> A -> crop -> scale
        ccx, ccy = _PAD + (x1 - x0) / 2.0, _PAD + (bottom - top) / 2.0
        p0, p1 = px * a00 + py * a10, px * a01 + py * a11
        rows = (
            (sx * a00 - sx * cx0 * p0, sx * a01 - sx * cx0 * p1, -sx * cx0),
            (sy * a10 - sy * cy0 * p0, sy * a11 - sy * cy0 * p1, -sy * cy0),
            (p0, p1, 1.0),
        )
        matrix = tuple(v for r0, r1, r2 in rows for v in (r0, r1, r2 - r0 * ccx - r1 * ccy))
        return Layout(label, font, size, xs, (x0, top, x1, bottom), matrix, width, border, shadow, bold,
                      neighbours)

    def _neighbours(self, r: random.Random, face: _FontAtSize, label: str, xs: list[int],
                    box: tuple[float, float, float, float], margins: tuple[float, float, float, float]
                    ) -> list[tuple[str, int, int]]:
        """Other text just outside the crop (pen positions relative to the word's pen origin).

        Only what the margins let through is visible: a sliver of a line above/below no taller than that
        margin, and at most half of one glyph of a word left/right, never closer than a word space.
        """
        if self.style.p_neighbours <= 0.0:
            return []
        rand = r.random
        x0, top, x1, bottom = box
        ml, mt, mr, mb = margins
        size = face.font.size
        out = []
        for side in ("above", "below", "left", "right"):
            if rand() >= self.style.p_neighbours:
                continue
            text = self.words[_below(r, len(self.words))]
            text = text.upper() if rand() < 0.5 else text
            if side in ("above", "below"):
                gap = mt * rand() if side == "above" else mb * rand()
                y = top - gap - face.bottom if side == "above" else bottom + gap - face.top
                x = x0 + (x1 - x0) * (1.2 * rand() - 0.6)
                out.append((text, round(x), round(y)))
                continue
            if side == "right":
                _, left, _, right, _ = face.metric(text[0])
                seen = (right - left) * 0.5 * rand()  # visible part of the neighbour's first glyph
                if mr - seen < 0.25 * size:
                    continue
                out.append((text, round(x1 + mr - seen - left), 0))
            else:
                _, left, _, right, _ = face.metric(text[-1])
                seen = (right - left) * 0.5 * rand()
                if ml - seen < 0.25 * size:
                    continue
                pen, _ = _pen_positions(face, text, 0.0)
                out.append((text, round(x0 - ml + seen - pen[-1] - right), 0))
        return out

    def plan(self, index: int) -> RenderPlan:
        """All random decisions for ``index`` (cheap: glyph metrics only, no rasterising)."""
        r = self._rng(index)
        lay = self._layout(r)
        rand = r.random

        # colours and background: the text luminance is >= min_contrast away from every background pixel
        u = rand()
        photo = (0, 0.0, 0.0, 1.0, False)
        if u < self.style.p_photo:
            bg_kind = "photo"
            photo = (_below(r, len(self.textures)), rand(), rand(), 1.0 + 5.0 * rand() ** 2, rand() < 0.5)
            bg_amp = self.style.photo_amplitude * (0.3 + 0.7 * rand())
        else:
            u = (u - self.style.p_photo) / max(1.0 - self.style.p_photo, 1e-9)
            bg_kind = "gradient" if u < self.style.p_gradient else "texture" if u < self.style.p_gradient + self.style.p_texture else "flat"
            bg_amp = 0.0 if bg_kind == "flat" else self.style.bg_amplitude * (0.3 + 0.7 * rand())
        bg_angle = 2.0 * math.pi * rand()
        edge = -1.0
        if rand() < self.style.p_edge:  # a border line in the top or bottom fifth of the image
            edge = 0.2 * rand() if rand() < 0.5 else 1.0 - 0.2 * rand()
            bg_amp = max(bg_amp, self.style.bg_amplitude * (0.5 + 0.5 * rand()))
        gap = self.style.min_contrast + bg_amp
        dark = rand() < self.style.p_dark_text
        y_text = (1.0 - gap) * rand() ** 1.5  # distance from the extreme: mostly near black/white
        y_bg = y_text + gap + (1.0 - gap - y_text) * rand() ** 0.7
        if not dark:
            y_text, y_bg = 1.0 - y_text, 1.0 - y_bg
        fg = _color_with_luma(r, y_text, self.style.saturation * rand())
        bg = _color_with_luma(r, y_bg, self.style.saturation * rand())
        # outline and shadow sit on the background's side of the text luminance
        sign = 1.0 if dark else -1.0
        room = max(0.0, abs(y_bg - y_text) - self.style.min_contrast)
        y_border = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        y_shadow = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        border_color = _color_with_luma(r, y_border, self.style.saturation * rand()) if lay.border else (y_border,) * 3
        shadow_color = (y_shadow,) * 3

        blur = _uniform(r, self.style.blur_sigma) if rand() < self.style.p_blur else 0.0
        noise = _uniform(r, self.style.noise_sigma) if rand() < self.style.p_noise else 0.0
        lowres = _uniform(r, self.style.lowres_scale) if rand() < self.style.p_lowres else 1.0
        jpeg = round(_uniform(r, self.style.jpeg_quality)) if rand() < self.style.p_jpeg else 0

        return RenderPlan(
            label=lay.label,
            font=lay.font,
            size=lay.size,
            xs=lay.xs,
            ink=lay.ink,
            matrix=lay.matrix,
            width=lay.width,
            fg=fg,
            bg=bg,
            bg_kind=bg_kind,
            bg_amp=bg_amp,
            bg_angle=bg_angle,
            photo=photo,
            edge=edge,
            neighbours=lay.neighbours,
            bold=lay.bold,
            border=lay.border,
            border_color=border_color,
            shadow=lay.shadow,
            shadow_color=shadow_color,
            blur=blur,
            noise=noise,
            lowres=lowres,
            jpeg=jpeg,
        )

    def width(self, index: int) -> int:
        """Final width of ``render(index).image`` (exact), computed without rasterising or colours."""
        return self._layout(self._rng(index)).width

    def label(self, index: int) -> str:
        """The label of ``render(index)`` without rasterising."""
        return self._label(self._rng(index))

    # ---- drawing ----
    def render(self, index: int) -> Sample:
        p = self.plan(index)
        return Sample(image=self.draw(p, index), label=p.label, key=f"render:{self.seed}:{index}")

    def __call__(self, index: int) -> Sample:
        return self.render(index)

    def _text_layer(self, p: RenderPlan) -> tuple[np.ndarray, float, float]:
        """Coverage of the word (and its neighbours) and the canvas origin's offset from the word canvas's."""
        face = self._face(p.font, p.size)
        x0, top, x1, bottom = p.ink
        runs = [(p.label, 0, 0, p.xs)]
        ex0, ey0, ex1, ey1 = x0, top, x1, bottom  # canvas extent in pen coordinates, grown for the neighbours
        for word, ox, oy in p.neighbours:
            xs, (nx0, ntop, nx1, nbottom) = _pen_positions(face, word, 0.0)
            runs.append((word, ox, oy, xs))
            ex0, ex1 = min(ex0, ox + nx0), max(ex1, ox + nx1)
            ey0, ey1 = min(ey0, oy + ntop), max(ey1, oy + nbottom)
        ex0, ey0, ex1, ey1 = math.floor(ex0), math.floor(ey0), math.ceil(ex1), math.ceil(ey1)
        text = np.zeros((ey1 - ey0 + 2 * _PAD, ex1 - ex0 + 2 * _PAD), np.uint8)
        for word, ox, oy, xs in runs:
            for ch, x in zip(word, xs):
                _, left, t, _, _ = face.metric(ch)
                bmp = face.bitmap(ch)
                gx, gy = _PAD + ox + x + left - ex0, _PAD + oy + t - ey0
                h, w = bmp.shape
                region = text[gy : gy + h, gx : gx + w]
                np.maximum(region, bmp, out=region)
        if p.bold:
            text = cv2.dilate(text, _BOLD_KERNEL)
        return text, ex0 - x0, ey0 - top

    def _background(self, p: RenderPlan, H: int, W: int, rng_for) -> np.ndarray | None:
        """Luminance deviation field (0..255 units, within ±bg_amp) around the base colour, or None."""
        field = None
        if p.bg_kind == "gradient":
            u = np.arange(W, dtype=np.float32) - (W - 1) / 2.0
            v = np.arange(H, dtype=np.float32) - (H - 1) / 2.0
            c, s = math.cos(p.bg_angle), math.sin(p.bg_angle)
            field = np.add.outer(v * np.float32(s), u * np.float32(c))
            scale = abs(c) * (W - 1) / 2.0 + abs(s) * (H - 1) / 2.0
            field *= np.float32(p.bg_amp * 255.0 / max(scale, 1e-6))
        elif p.bg_kind == "texture":
            rng = rng_for()
            gh = 2 + int(rng.integers(0, 4))
            gw = max(2, W // int(rng.integers(4, 17)))
            grid = rng.random((gh, gw), dtype=np.float32)
            field = cv2.resize(grid, (W, H), interpolation=cv2.INTER_LINEAR)
            field = (field * np.float32(2.0) - np.float32(1.0)) * np.float32(p.bg_amp * 255.0)
        elif p.bg_kind == "photo":
            field = _photo_field(self.textures[p.photo[0]], p.photo, H, W) * np.float32(p.bg_amp * 255.0)
        if p.edge >= 0.0:  # a sign's border: the far side of a horizontal line shifts by the amplitude
            step = np.zeros((H, 1), np.float32)
            row = int(p.edge * H)
            sign = 1.0 if p.bg_angle < math.pi else -1.0
            if p.edge < 0.5:
                step[:row] = sign * p.bg_amp * 255.0
            else:
                step[row:] = sign * p.bg_amp * 255.0
            if field is None:
                field = np.repeat(step, W, axis=1)
            else:  # keep the sum within ±amp: halve both
                field = np.float32(0.5) * (field + step)
        return field

    def draw(self, p: RenderPlan, index: int) -> np.ndarray:
        """Rasterise a plan; ``index`` seeds the pixel-level randomness (noise, texture)."""
        text, dx, dy = self._text_layer(p)
        chh, cw = text.shape
        layers = [text]
        if p.border:
            k = 2 * p.border + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            layers.append(cv2.dilate(text, kernel))
        if p.shadow != (0, 0):
            sx, sy = p.shadow
            sh = np.zeros_like(text)
            sh[sy:, sx:] = text[: chh - sy, : cw - sx]
            layers.append(sh)
        src = layers[0] if len(layers) == 1 else np.dstack(layers)

        # OpenCV samples at pixel centres: convert the edge-coordinate matrix accordingly; the text canvas may
        # start (dx, dy) away from the word canvas the plan's matrix is written for.
        m = np.array(p.matrix, dtype=np.float64).reshape(3, 3)
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
        m = _HALF_INV @ m @ shift @ _HALF
        H, W = self.height, p.width
        warped = cv2.warpPerspective(src, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if warped.ndim == 2:
            warped = warped[:, :, None]
        alphas = warped.astype(np.float32) * np.float32(1.0 / 255.0)

        rngs: list[np.random.Generator] = []

        def rng_for() -> np.random.Generator:  # one pixel-level stream per image, made on first use
            if not rngs:
                rngs.append(np.random.default_rng([self.seed & _MASK64, index & _MASK64]))
            return rngs[0]

        field = self._background(p, H, W, rng_for)

        if self.channels == 1:
            out = np.full((H, W), _luma(p.bg) * 255.0, np.float32)
            if field is not None:
                out += field
            order = []
            if p.shadow != (0, 0):
                order.append((alphas[:, :, -1], _luma(p.shadow_color)))
            if p.border:
                order.append((alphas[:, :, 1], _luma(p.border_color)))
            order.append((alphas[:, :, 0], _luma(p.fg)))
            for a, y in order:
                out += a * (np.float32(y * 255.0) - out)
        else:
            out = np.empty((H, W, 3), np.float32)
            out[:] = np.array(p.bg, np.float32) * np.float32(255.0)
            if field is not None:
                out += field[:, :, None]
            order = []
            if p.shadow != (0, 0):
                order.append((alphas[:, :, -1:], p.shadow_color))
            if p.border:
                order.append((alphas[:, :, 1:2], p.border_color))
            order.append((alphas[:, :, 0:1], p.fg))
            for a, col in order:
                out += a * (np.array(col, np.float32) * np.float32(255.0) - out)
        return _degrade(out, p, rng_for)


def _pen_positions(face: _FontAtSize, text: str, spacing: float) -> tuple[list[int], tuple[int, int, int, int]]:
    """Pen x of each character and the ink box (x0, top, x1, bottom) relative to the pen origin/baseline."""
    pen, xs = 0.0, []
    x0, x1, top, bottom = math.inf, -math.inf, math.inf, -math.inf
    for ch in text:
        adv, left, t, right, b = face.metric(ch)
        x = round(pen)
        xs.append(x)
        x0, x1 = min(x0, x + left), max(x1, x + right)
        top, bottom = min(top, t), max(bottom, b)
        pen += adv + spacing
    return xs, (x0, top, x1, bottom)


def _photo_field(tex: np.ndarray, photo: tuple[int, float, float, float, bool], H: int, W: int) -> np.ndarray:
    """A crop of a texture at ``scale`` texture px per output px, mirrored or not, as a field in [-1, 1]."""
    _, fx, fy, scale, mirror = photo
    th, tw = tex.shape
    ch = min(th, max(4, round(H * scale)))
    cw = min(tw, max(4, round(W * scale)))
    y, x = int(fy * (th - ch)), int(fx * (tw - cw))
    crop = tex[y : y + ch, x : x + cw]
    if mirror:
        crop = crop[:, ::-1]
    field = cv2.resize(crop, (W, H), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)
    field = field.astype(np.float32)
    field -= np.float32(field.mean())
    peak = float(np.abs(field).max())
    return field * np.float32(1.0 / peak) if peak > 0 else field


def _degrade(out: np.ndarray, p: RenderPlan, rng_for) -> np.ndarray:
    """Blur, low resolution, noise and JPEG on the composed float image; returns uint8."""
    if p.blur > 0.0:
        out = cv2.GaussianBlur(out, (0, 0), p.blur)
    if p.lowres < 1.0:
        H, W = out.shape[:2]
        small = cv2.resize(out, (max(2, round(W * p.lowres)), max(2, round(H * p.lowres))),
                           interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    if p.noise > 0.0:
        noise = rng_for().standard_normal(out.shape[:2], dtype=np.float32)
        noise *= np.float32(p.noise)
        out += noise if out.ndim == 2 else noise[:, :, None]
    out += np.float32(0.5)
    np.clip(out, 0.0, 255.0, out=out)
    img = out.astype(np.uint8)
    if p.jpeg:
        ok, buf = cv2.imencode(".jpg", img, (cv2.IMWRITE_JPEG_QUALITY, p.jpeg))
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(img.shape)
    return img


def load_textures(textures_dir: str | Path) -> list[np.ndarray]:
    """Grayscale photographs (.jpg/.png) under ``textures_dir``, sorted by path."""
    root = Path(textures_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"textures_dir {str(root)!r} is not a directory")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [np.asarray(Image.open(f).convert("L"), dtype=np.uint8) for f in files]


@dataclass(slots=True)
class Layout:
    """The part of a plan the image width depends on (label, font, geometry)."""

    label: str
    font: int
    size: int
    xs: list[int]
    ink: tuple[int, int, int, int]
    matrix: tuple[float, ...]
    width: int
    border: int
    shadow: tuple[int, int]
    bold: int
    neighbours: list[tuple[str, int, int]]


_BOLD_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_HALF_INV = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


def _luma(rgb: tuple[float, float, float]) -> float:
    return _LUMA[0] * rgb[0] + _LUMA[1] * rgb[1] + _LUMA[2] * rgb[2]


class SyntheticWords(torch.utils.data.Dataset):
    """Map-style dataset over a virtual index space of rendered words.

    ``dataset[i]`` is ``renderer.render(i)``; ``dataset.width(i)`` is its width without rendering. Training
    uses a huge ``length`` and samples random indices; validation a small fixed ``length`` and another seed.
    """

    def __init__(self, renderer: WordRenderer, length: int):
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.renderer = renderer
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def _check(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self.length
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for SyntheticWords of length {self.length}")
        return i

    def __getitem__(self, i: int) -> Sample:
        return self.renderer.render(self._check(i))

    def width(self, i: int) -> int:
        return self.renderer.width(self._check(i))

    def size(self, i: int) -> tuple[int, int]:
        """(width, height) of image ``i`` without rendering it — the source protocol the batch sampler uses."""
        return self.width(i), self.renderer.height
