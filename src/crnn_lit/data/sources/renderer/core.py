"""WordRenderer: (seed, index) -> plan -> image; SyntheticWords: the renderer as a map-style dataset."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import torch

from crnn_lit.data.sample import Sample
from crnn_lit.data.sources.renderer.backgrounds import background_field, load_textures
from crnn_lit.data.sources.renderer.degrade import degrade
from crnn_lit.data.sources.renderer.fonts import (
    DIGITS,
    LETTERS,
    PRINTABLE_ASCII,
    FontAtSize,
    arc_offsets,
    discover_fonts,
    font_cdf,
    pen_positions,
)
from crnn_lit.data.sources.renderer.palette import draw_pair, load_palette
from crnn_lit.data.sources.renderer.plan import Layout, RenderPlan, below, color_with_luma, luma, uniform
from crnn_lit.data.sources.renderer.style import RenderStyle
from crnn_lit.data.sources.renderer.words import load_frequencies, load_words, symbolic_text
from crnn_lit.preprocess import Preprocess

_MASK64 = (1 << 64) - 1
_PAD = 4  # blank pixels around the glyph canvas (room for borders and shadows)
_BOLD_KERNEL = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
# OpenCV samples at pixel centres, plans use edge coordinates
_HALF = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
_HALF_INV = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])


class WordRenderer:
    """Deterministic synthetic word images: ``render(index)`` is a pure function of ``(seed, index)``.

    Args:
        words_file: UTF-8 word list, one word per line (e.g. ``data/words/english.txt``).
        fonts_dir: directory searched recursively for .ttf/.otf faces (e.g. ``data/fonts``).
        preprocess: the network's input spec: images are rendered at its ``height`` (width following the word's
            aspect ratio), with its ``channels`` (1 -> HxW grayscale uint8, 3 -> HxWx3 RGB uint8); narrower than
            ``min_width`` is padded with background, wider than ``max_width`` squeezed horizontally.
        seed: stream id; different seeds give independent sample streams (e.g. train vs validation).
        max_word_len: labels are never longer than this.
        charset_chars: if given, labels only use these characters (words are lower/upper-cased to fit or
            skipped; random strings draw from its printable ASCII part).
        extra_words_files: more word lists (e.g. MJSynth's 90k vocabulary); missing files are skipped. ALL-CAPS
            entries are lower-cased, so that the style's case policy decides their case.
        textures_dir: folder of grayscale photographs used as backgrounds (``data/textures``); None: no photos.
        palette_file: measured (text, background) colour pairs (``data/colors/real_train.tsv``), drawn for a
            ``style.p_real_colors`` share of samples; None: none.
        frequency_file: ``word<TAB>zipf`` lines (``data/words/frequency/english_frequency.tsv``): the words drawn
            by frequency (``style.p_frequent``); None: none.
        style: how the images look (:class:`RenderStyle`, or a mapping of its fields); None: its defaults.
    """

    def __init__(
        self,
        words_file: str,
        fonts_dir: str,
        preprocess: Preprocess,
        seed: int = 0,
        max_word_len: int = 23,
        charset_chars: str | None = None,
        extra_words_files: tuple[str, ...] = (),
        textures_dir: str | None = None,
        frequency_file: str | None = None,
        style: RenderStyle | Mapping | None = None,
        palette_file: str | None = None,
    ):
        self.style = style if isinstance(style, RenderStyle) else RenderStyle(**(style or {}))
        self.words_file = str(words_file)
        self.fonts_dir = str(fonts_dir)
        self.preprocess = preprocess  # validated by Preprocess itself
        self.seed = int(seed)
        self.max_word_len = int(max_word_len)
        self.charset_chars = charset_chars
        hi = max(1, min(int(self.style.random_len[1]), self.max_word_len))
        self._random_len = (min(max(1, int(self.style.random_len[0])), hi), hi)  # never beyond max_word_len
        self.textures_dir = None if textures_dir is None else str(textures_dir)
        self.textures = load_textures(textures_dir) if textures_dir is not None else []
        if self.style.p_photo > 0 and not self.textures:
            raise FileNotFoundError(f"p_photo > 0 but no textures in {textures_dir!r}")

        self.palette_file = None if palette_file is None else str(palette_file)
        self._palette, self._palette_cdf = load_palette(palette_file) if palette_file is not None else ([], [])
        if self.style.p_real_colors > 0 and not self._palette:
            raise ValueError("p_real_colors > 0 needs a palette_file")

        self.fonts = discover_fonts(fonts_dir)
        if not self.fonts:
            raise FileNotFoundError(f"no .ttf/.otf fonts under {fonts_dir!r}")
        self._font_cdf = font_cdf(self.fonts, Path(fonts_dir), self.style.font_weights)

        allowed = set(charset_chars) if charset_chars is not None else None
        self._allowed = allowed
        self.extra_words_files = tuple(str(f) for f in extra_words_files)
        self.words = load_words(words_file, self.extra_words_files, self.max_word_len, allowed)
        self.frequency_file = None if frequency_file is None else str(frequency_file)
        self._frequent, self._frequent_cdf = ([], None) if frequency_file is None else load_frequencies(
            frequency_file, self.style.frequency_power, self.max_word_len, allowed)

        if allowed is None:
            self._random_digits, self._random_mixed = DIGITS, DIGITS + LETTERS
        else:
            usable = "".join(sorted(c for c in allowed if c in PRINTABLE_ASCII))
            if not usable:
                raise ValueError("charset_chars has no printable ASCII character")
            digits = "".join(c for c in DIGITS if c in allowed)
            self._random_digits, self._random_mixed = digits or usable, usable

        self._cache: dict[tuple[int, int], FontAtSize] = {}

    @classmethod
    def from_spec(cls, spec: Mapping, preprocess: Preprocess, seed: int = 0, **kwargs) -> WordRenderer:
        """A renderer from a ``conf/renderer`` group (its assets and style), bound to the network's input spec
        and a seed by the data config that uses it: the one place that lists what a renderer config holds."""
        return cls(preprocess=preprocess, seed=seed, **dict(spec), **kwargs)

    # ---- pickling (DataLoader workers with spawn): ship the config, rebuild caches lazily ----
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _face(self, font: int, size: int) -> FontAtSize:
        key = (font, size)
        face = self._cache.get(key)
        if face is None:
            face = self._cache[key] = FontAtSize(self.fonts[font], size)
        return face

    def _rng(self, index: int) -> random.Random:
        # An int seed is hashed the same way by every Python process and version (no PYTHONHASHSEED).
        return random.Random(((self.seed & _MASK64) << 64) | (index & _MASK64))

    # ---- label ----
    def _label(self, r: random.Random) -> str:
        if r.random() < self.style.p_digits:
            lo, hi = self._random_len
            n = lo + below(r, hi - lo + 1)
            pool = self._random_digits if r.random() < 0.5 else self._random_mixed
            return "".join(pool[below(r, len(pool))] for _ in range(n))
        # (no draw at all when p_frequent is 0: the stream of every other decision stays as it was)
        if self._frequent_cdf is not None and self.style.p_frequent > 0 and r.random() < self.style.p_frequent:
            w = self._frequent[bisect.bisect_right(self._frequent_cdf, r.random())]
        else:
            w = self.words[below(r, len(self.words))]
        u = r.random()
        if u < self.style.p_upper:
            cand = w.upper()
        elif u < self.style.p_upper + self.style.p_capitalized and w.islower():
            cand = w[0].upper() + w[1:]
        else:
            cand = w
        if self._allowed is not None and not set(cand) <= self._allowed:
            cand = w
        # (as p_frequent: no draw when p_symbols is 0)
        if self.style.p_symbols > 0 and r.random() < self.style.p_symbols:
            text = symbolic_text(r, cand, self.max_word_len)
            cand = text if self._allowed is None or set(text) <= self._allowed else cand
        return cand

    # ---- plan ----
    def _layout(self, r: random.Random) -> Layout:
        """First part of a plan: label, font and geometry (everything the width depends on)."""
        rand = r.random
        label = self._label(r)
        font = below(r, len(self.fonts)) if self._font_cdf is None else bisect.bisect_right(self._font_cdf, r.random())
        size = self.style.font_size[0] + below(r, self.style.font_size[1] - self.style.font_size[0] + 1)
        face = self._face(font, size)

        spacing = size * uniform(r, self.style.char_spacing) if rand() < self.style.p_spacing else 0.0
        xs, (x0, top, x1, bottom) = pen_positions(face, label, spacing)
        ys = [0] * len(label)
        if self.style.p_curve > 0 and rand() < self.style.p_curve:  # (no draw at 0, as p_frequent)
            ys = arc_offsets(face, label, xs, size * self.style.max_curve * (2.0 * rand() - 1.0))
            top = min(face.metric(ch)[2] + y for ch, y in zip(label, ys))
            bottom = max(face.metric(ch)[4] + y for ch, y in zip(label, ys))
        if rand() >= self.style.p_tight_y:  # the face's full extent: all words of a face share one scale
            top, bottom = min(top, face.top + min(ys, default=0)), max(bottom, face.bottom + max(ys, default=0))

        border = (1 + below(r, 2)) if rand() < self.style.p_border else 0
        shadow = (1 + below(r, 3), 1 + below(r, 3)) if rand() < self.style.p_shadow else (0, 0)
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
        ml, mr = size * uniform(r, self.style.margin_x), size * uniform(r, self.style.margin_x)
        mt, mb = size * uniform(r, self.style.margin_y), size * uniform(r, self.style.margin_y)
        neighbours = self._neighbours(r, face, label, xs, (x0 - ext, top - ext, x1 + ext, bottom + ext),
                                      (ml, mt, mr, mb))
        cx0, cy0 = qx0 - ml, qy0 - mt
        crop_w, crop_h = qx1 + mr - cx0, qy1 + mb - cy0
        sy = self.preprocess.height / crop_h
        natural = crop_w * sy
        width = min(max(round(natural), self.preprocess.min_width), self.preprocess.max_width)
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
        return Layout(label, font, size, xs, ys, (x0, top, x1, bottom), matrix, width, border, shadow, bold,
                      neighbours)

    def _neighbours(self, r: random.Random, face: FontAtSize, label: str, xs: list[int],
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
            text = self.words[below(r, len(self.words))]
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
                pen, _ = pen_positions(face, text, 0.0)
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
            photo = (below(r, len(self.textures)), rand(), rand(), 1.0 + 5.0 * rand() ** 2, rand() < 0.5)
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
        fg = color_with_luma(r, y_text, self.style.saturation * rand())
        bg = color_with_luma(r, y_bg, self.style.saturation * rand())
        if self.style.p_real_colors > 0 and rand() < self.style.p_real_colors:  # (as p_frequent: no draw at 0)
            fg, bg = draw_pair(r, self._palette, self._palette_cdf, gap)
            y_text, y_bg = luma(fg), luma(bg)
            dark = y_text < y_bg
        # outline and shadow sit on the background's side of the text luminance
        sign = 1.0 if dark else -1.0
        room = max(0.0, abs(y_bg - y_text) - self.style.min_contrast)
        y_border = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        y_shadow = min(max(y_text + sign * (self.style.min_contrast + room * rand()), 0.0), 1.0)
        border_color = color_with_luma(r, y_border, self.style.saturation * rand()) if lay.border else (y_border,) * 3
        shadow_color = (y_shadow,) * 3

        blur = uniform(r, self.style.blur_sigma) if rand() < self.style.p_blur else 0.0
        noise = uniform(r, self.style.noise_sigma) if rand() < self.style.p_noise else 0.0
        lowres = uniform(r, self.style.lowres_scale) if rand() < self.style.p_lowres else 1.0
        jpeg = round(uniform(r, self.style.jpeg_quality)) if rand() < self.style.p_jpeg else 0
        # (as p_frequent: no draw at 0, so that adding these levers left every other decision as it was)
        shade = (0.0, 0.0, 0.0, 0.0)
        if self.style.p_shading > 0 and rand() < self.style.p_shading:  # the edge crosses the middle 60 %
            shade = (uniform(r, self.style.shade_depth), 2.0 * math.pi * rand(), 0.2 + 0.6 * rand(),
                     0.02 + 0.5 * rand() ** 2)
        motion = (0.0, 0.0)
        if self.style.p_motion_blur > 0 and rand() < self.style.p_motion_blur:
            motion = (uniform(r, self.style.motion_blur_len), math.pi * rand())

        return RenderPlan(lay, fg=fg, bg=bg, bg_kind=bg_kind, bg_amp=bg_amp, bg_angle=bg_angle, photo=photo, edge=edge,
                          border_color=border_color, shadow_color=shadow_color, blur=blur, noise=noise,
                          lowres=lowres, jpeg=jpeg, shade=shade, motion=motion)

    def width(self, index: int) -> int:
        """Final width of ``render(index).image`` (exact), computed without rasterising or colours."""
        return self._layout(self._rng(index)).width

    def label(self, index: int) -> str:
        """The label of ``render(index)`` without rasterising."""
        return self._label(self._rng(index))

    # ---- drawing ----
    def render(self, index: int) -> Sample:
        p = self.plan(index)
        return Sample(image=self.draw(p, index), label=p.layout.label, key=f"render:{self.seed}:{index}")

    def __call__(self, index: int) -> Sample:
        return self.render(index)

    def _text_layer(self, lay: Layout) -> tuple[np.ndarray, float, float]:
        """Coverage of the word (and its neighbours) and the canvas origin's offset from the word canvas's."""
        face = self._face(lay.font, lay.size)
        x0, top, x1, bottom = lay.ink
        runs = [(lay.label, 0, 0, lay.xs, lay.ys)]
        ex0, ey0, ex1, ey1 = x0, top, x1, bottom  # canvas extent in pen coordinates, grown for the neighbours
        for word, ox, oy in lay.neighbours:
            xs, (nx0, ntop, nx1, nbottom) = pen_positions(face, word, 0.0)
            runs.append((word, ox, oy, xs, [0] * len(word)))
            ex0, ex1 = min(ex0, ox + nx0), max(ex1, ox + nx1)
            ey0, ey1 = min(ey0, oy + ntop), max(ey1, oy + nbottom)
        ex0, ey0, ex1, ey1 = math.floor(ex0), math.floor(ey0), math.ceil(ex1), math.ceil(ey1)
        text = np.zeros((ey1 - ey0 + 2 * _PAD, ex1 - ex0 + 2 * _PAD), np.uint8)
        for word, ox, oy, xs, ys in runs:
            for ch, x, y in zip(word, xs, ys):
                _, left, t, _, _ = face.metric(ch)
                bmp = face.bitmap(ch)
                gx, gy = _PAD + ox + x + left - ex0, _PAD + oy + y + t - ey0
                h, w = bmp.shape
                region = text[gy : gy + h, gx : gx + w]
                np.maximum(region, bmp, out=region)
        if lay.bold:
            text = cv2.dilate(text, _BOLD_KERNEL)
        return text, ex0 - x0, ey0 - top

    def draw(self, p: RenderPlan, index: int) -> np.ndarray:
        """Rasterise a plan; ``index`` seeds the pixel-level randomness (noise, texture)."""
        lay = p.layout
        text, dx, dy = self._text_layer(lay)
        chh, cw = text.shape
        layers = [text]
        if lay.border:
            k = 2 * lay.border + 1
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
            layers.append(cv2.dilate(text, kernel))
        if lay.shadow != (0, 0):
            sx, sy = lay.shadow
            sh = np.zeros_like(text)
            sh[sy:, sx:] = text[: chh - sy, : cw - sx]
            layers.append(sh)
        src = layers[0] if len(layers) == 1 else np.dstack(layers)

        # OpenCV samples at pixel centres: convert the edge-coordinate matrix accordingly; the text canvas may
        # start (dx, dy) away from the word canvas the plan's matrix is written for.
        m = np.array(lay.matrix, dtype=np.float64).reshape(3, 3)
        shift = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])
        m = _HALF_INV @ m @ shift @ _HALF
        H, W = self.preprocess.height, lay.width
        warped = cv2.warpPerspective(src, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if warped.ndim == 2:
            warped = warped[:, :, None]
        alphas = warped.astype(np.float32) * np.float32(1.0 / 255.0)

        rngs: list[np.random.Generator] = []

        def rng_for() -> np.random.Generator:  # one pixel-level stream per image, made on first use
            if not rngs:
                rngs.append(np.random.default_rng([self.seed & _MASK64, index & _MASK64]))
            return rngs[0]

        field = background_field(p, H, W, self.textures, rng_for)

        if self.preprocess.channels == 1:
            out = np.full((H, W), luma(p.bg) * 255.0, np.float32)
            if field is not None:
                out += field
            order = []
            if lay.shadow != (0, 0):
                order.append((alphas[:, :, -1], luma(p.shadow_color)))
            if lay.border:
                order.append((alphas[:, :, 1], luma(p.border_color)))
            order.append((alphas[:, :, 0], luma(p.fg)))
            for a, y in order:
                out += a * (np.float32(y * 255.0) - out)
        else:
            out = np.empty((H, W, 3), np.float32)
            out[:] = np.array(p.bg, np.float32) * np.float32(255.0)
            if field is not None:
                out += field[:, :, None]
            order = []
            if lay.shadow != (0, 0):
                order.append((alphas[:, :, -1:], p.shadow_color))
            if lay.border:
                order.append((alphas[:, :, 1:2], p.border_color))
            order.append((alphas[:, :, 0:1], p.fg))
            for a, col in order:
                out += a * (np.array(col, np.float32) * np.float32(255.0) - out)
        return degrade(out, p, rng_for)


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

    def __repr__(self) -> str:
        r = self.renderer
        return f"SyntheticWords(seed {r.seed}, {len(r.words):,} words, {len(r.fonts)} fonts)"

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
        return self.width(i), self.renderer.preprocess.height
